"""A fake GitHub Actions OIDC issuer on loopback, for the app's verifier and the runner's exchange.

    with FakeOidcIssuer() as issuer:
        settings = make_settings(WAOOAW_OIDC_ISSUER=issuer.url)
        token = issuer.mint(repository="octo/hello")               # a JWT as GitHub signs it
        forged = issuer.mint(repository="octo/hello", key=rsa_key())  # same key id, other key
        env = issuer.runner_env(repository="octo/hello")           # what a runner with id-token: write has

A real HTTP server (tests/fakes/loopback.py) with a throwaway RSA key, serving what the
real issuer serves: `/.well-known/openid-configuration` and the key set at its
`jwks_uri`; and, like a runner's `ACTIONS_ID_TOKEN_REQUEST_URL`, `GET /token?audience=`
with `Authorization: bearer <request token>` → `{"value": <JWT>}`, minted with the
claims given to `runner_env`. Every request is kept in `requests` as (method, path).
"""

from __future__ import annotations

import functools
import itertools
import secrets
import threading
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.fakes.loopback import LoopbackServer

WORKFLOW_PATH = ".github/workflows/waooaw-coe.yml"
KEY_ID = "fake-actions-key"


def rsa_key() -> rsa.RSAPrivateKey:
    """A new throwaway RSA key (pass one to `mint(key=...)` to forge a signature)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@functools.lru_cache(maxsize=1)
def issuer_key() -> rsa.RSAPrivateKey:
    return rsa_key()  # one per test session: generating RSA keys is slow


class FakeOidcIssuer:
    def __init__(self) -> None:
        self.key = issuer_key()
        self.url = ""
        self.requests: list[tuple[str, str]] = []
        self.request_token = secrets.token_urlsafe(16)  # the runner's ACTIONS_ID_TOKEN_REQUEST_TOKEN
        self.runner_claims: dict[str, Any] = {}
        self._runs = itertools.count(9_000_000_001)
        self._lock = threading.Lock()
        self._server: LoopbackServer | None = None

    def __enter__(self) -> FakeOidcIssuer:
        self._server = LoopbackServer("fake-oidc", self._endpoint, ["GET"])
        self.url = self._server.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.stop()

    def reset(self) -> None:
        self.requests.clear()
        self.runner_claims = {}

    # ------------------------------------------------------------ tokens

    def mint(
        self,
        *,
        repository: str = "octo/hello",
        workflow_ref: str | None = None,
        event_name: str = "workflow_dispatch",
        audience: str = "waooaw",
        run_id: str | None = None,
        expires_in: int = 300,
        issued_at: float | None = None,
        issuer: str | None = None,
        key: rsa.RSAPrivateKey | None = None,
        algorithm: str = "RS256",
        omit: tuple[str, ...] = (),
        **claims: Any,
    ) -> str:
        """A JWT with GitHub Actions' claims; `claims` override or add any, `omit` leaves some out."""
        now = int(issued_at if issued_at is not None else time.time())
        owner = repository.partition("/")[0]
        run = run_id or str(next(self._runs))
        ref = "refs/heads/main"
        body: dict[str, Any] = {
            "jti": secrets.token_hex(16),
            "sub": f"repo:{repository}:ref:{ref}",
            "aud": audience,
            "ref": ref,
            "sha": "a" * 40,
            "repository": repository,
            "repository_owner": owner,
            "repository_owner_id": "1001",
            "repository_id": "2002",
            "repository_visibility": "private",
            "run_id": run,
            "run_number": "7",
            "run_attempt": "1",
            "actor": "octocat",
            "actor_id": "583231",
            "workflow": "waooaw-coe",
            "workflow_ref": workflow_ref or f"{repository}/{WORKFLOW_PATH}@{ref}",
            "workflow_sha": "a" * 40,
            "job_workflow_ref": f"{repository}/{WORKFLOW_PATH}@{ref}",
            "job_workflow_sha": "a" * 40,
            "head_ref": "",
            "base_ref": "",
            "event_name": event_name,
            "ref_type": "branch",
            "ref_protected": "true",
            "runner_environment": "github-hosted",
            "iss": issuer or self.url,
            "nbf": now - 5,
            "iat": now,
            "exp": now + expires_in,
        }
        body.update(claims)
        body = {name: value for name, value in body.items() if name not in omit}
        return jwt.encode(body, key or self.key, algorithm=algorithm, headers={"kid": KEY_ID})

    def runner_env(self, **claims: Any) -> dict[str, str]:
        """The two variables a runner with `permissions: id-token: write` has; its token carries `claims`."""
        self.runner_claims = claims
        return {
            "ACTIONS_ID_TOKEN_REQUEST_URL": f"{self.url}/token?api-version=2.0",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": self.request_token,
        }

    # ------------------------------------------------------------ HTTP

    async def _endpoint(self, request: Request) -> Response:
        path = "/" + request.path_params["path"]
        with self._lock:
            self.requests.append((request.method, path))
        if path == "/.well-known/openid-configuration":
            return JSONResponse(
                {
                    "issuer": self.url,
                    "jwks_uri": f"{self.url}/.well-known/jwks",
                    "subject_types_supported": ["public", "pairwise"],
                    "response_types_supported": ["id_token"],
                    "claims_supported": [
                        "sub",
                        "aud",
                        "exp",
                        "iat",
                        "iss",
                        "jti",
                        "nbf",
                        "ref",
                        "repository",
                        "repository_owner",
                        "run_id",
                        "event_name",
                        "workflow_ref",
                    ],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "scopes_supported": ["openid"],
                }
            )
        if path == "/.well-known/jwks":
            public = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
            return JSONResponse({"keys": [public | {"kid": KEY_ID, "use": "sig", "alg": "RS256"}]})
        if path == "/token":
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or token != self.request_token:
                return JSONResponse({"message": "bad request token"}, status_code=401)
            owner = self.runner_claims.get("repository", "octo/hello").partition("/")[0]
            audience = request.query_params.get("audience") or f"https://github.com/{owner}"  # GitHub's default
            return JSONResponse({"count": 1, "value": self.mint(**self.runner_claims | {"audience": audience})})
        return JSONResponse({"message": f"fake OIDC issuer does not serve {path}"}, status_code=404)
