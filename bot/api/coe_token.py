"""POST /api/v1/coe/token: a CoE runner trades its GitHub Actions OIDC token for a job token.

The runner of `.github/workflows/waooaw-coe.yml` (workflow_dispatch, `permissions:
id-token: write`) asks GitHub for an OIDC token with our audience and presents it with
its job id (bot/coe_auth.py), so no secret travels in the workflow's inputs: the
issuer's signature proves which repository, workflow and run is asking.

Checks, in this order: the body (400); the OIDC token — RS256 against the issuer's
published keys, issuer, audience, lifetime, and claims naming a workflow_dispatch run of
waooaw-coe.yml in its own repository (401, one message for every reason; the reason is
logged); the repository's installation is active, and the repository's and its owner's
ids are the ones the App was installed on (403); the job exists for that repository in
that installation (404) and has not finished (409); the workflow ran from the
repository's default branch as the job recorded it when the app started it, or from a
ref WAOOAW_OIDC_WORKFLOW_REFS names (403); the OIDC token was never exchanged before
(409: its `jti` is remembered until it expires). The answer is a Context API token for
the installation, the repository and the job and, with GitHub App credentials, an
installation token restricted to the repository. Tokens are never logged.

A runner whose answer is lost (a dropped connection, a 502 or 503) asks again with a new
OIDC token, which GitHub Actions mints on every request (bot/coe_auth.py); the token the
lost answer carried is never used and expires.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

import httpx
import jwt
import structlog
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from githubkit.exception import GitHubException
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import delete
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from agents import tokens
from agents.context.client import ContextClient, DbContextClient
from agents.context.documents import check_segment
from agents.context.errors import Conflict, ContextError, Forbidden, InvalidRequest, NotFound, Unauthorized
from agents.domain import job as job_record
from agents.store.db import Store, dialect_insert
from agents.store.tables import Installation, OidcExchange
from agents.tokens import Grant, IssuedToken
from bot import tenancy
from bot.api.errors import error_response
from bot.api.json_body import read_json_body
from bot.api.schemas import ErrorBody
from bot.github import GitHubClients, github_clients
from bot.settings import Settings

log = structlog.get_logger(__name__)

WORKFLOW_PATH = f".github/workflows/{job_record.WORKFLOW}"
JOB_FINISHED = frozenset({"done", "failed", "cancelled"})
# What the runner's GitHub token may do in its one repository: push a branch, open the PR, talk in issues.
RUNNER_PERMISSIONS = {"contents": "write", "issues": "write", "pull_requests": "write"}
LEEWAY_SECONDS = 30  # clock skew between GitHub and us
ISSUER_TIMEOUT = 10.0  # seconds, for the discovery document and the key set
KEYS_LIFESPAN = 300.0  # seconds the issuer's key set is kept; an unknown key id fetches it again
REQUIRED_CLAIMS = [
    "iss",
    "aud",
    "exp",
    "iat",
    "jti",
    "repository",
    "repository_id",
    "repository_owner",
    "repository_owner_id",
    "event_name",
    "workflow_ref",
    "run_id",
]
REFUSED = "the OIDC token was refused (see the app's log for why)"
_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$")
_GITHUB_ID = re.compile(r"[0-9]{1,18}")
JTI_MAX = 256
# GitHub's OIDC tokens live minutes; one that claims more would keep its jti in memory that long.
LONGEST_LIFETIME = timedelta(days=1)


class CoeTokenError(ContextError):
    """An answer other than the Context API's own: 400 malformed body, 502 GitHub refused, 503 issuer unreachable."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class TokenRefused(Exception):
    """Why an OIDC token is refused: logged, never told (the caller hears REFUSED)."""


class CoeTokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job: str = Field(min_length=1, max_length=tokens.JOB_ID_MAX, description="The job id, e.g. `job-3f9a2b1c0d`.")
    oidc_token: str = Field(min_length=1, max_length=16_384, description="The run's GitHub Actions OIDC token (a JWT).")


class CoeTokenGranted(BaseModel):
    token: str = Field(
        description="A Context API token (`wao_<id>_<secret>`) that reaches the job's scopes in its repository only."
    )
    expires_at: str
    job: str
    installation_id: int
    repo: str
    github_token: str | None = Field(
        description="An installation token for this repository alone (contents, issues, pull requests: write); "
        "null without GitHub App credentials."
    )


@dataclass(frozen=True)
class Runner:
    """Who is asking, as the issuer vouches for it."""

    repository: str
    repository_id: int
    owner_id: int
    run_id: str
    ref: str  # where its workflow file was read from: workflow_ref's ref, e.g. refs/heads/main
    jti: str  # the OIDC token's own id
    usable_until: datetime  # the OIDC token's expiry plus the verifier's leeway

    @property
    def actor(self) -> str:
        return f"oidc:{self.repository}@{self.run_id}"


# --------------------------------------------------------------------------- the OIDC token


class ActionsOidc:
    """Verifies GitHub Actions OIDC tokens with the issuer's keys: discovered once, the key set cached."""

    def __init__(
        self, issuer: str, audience: str, *, timeout: float = ISSUER_TIMEOUT, leeway: float = LEEWAY_SECONDS
    ) -> None:
        self.issuer, self.audience, self.timeout, self.leeway = issuer, audience, timeout, leeway
        self._keys: jwt.PyJWKClient | None = None
        self._discovering = threading.Lock()

    def verify(self, token: str) -> Runner:
        """The runner a token speaks for; TokenRefused, or CoeTokenError(503) when the keys cannot be had."""
        try:
            key = self._key_set().get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as exc:
            raise CoeTokenError(503, f"the OIDC issuer's keys could not be fetched ({exc}); try again") from exc
        except jwt.PyJWTError as exc:
            raise TokenRefused(f"no key of the issuer signs it: {exc}") from exc
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError as exc:
            raise TokenRefused(f"{exc.__class__.__name__}: {exc}") from exc
        return runner_of(claims, self.leeway)

    def _key_set(self) -> jwt.PyJWKClient:
        with self._discovering:
            if self._keys is None:
                self._keys = jwt.PyJWKClient(self._jwks_uri(), timeout=self.timeout, lifespan=KEYS_LIFESPAN)
            return self._keys

    def _jwks_uri(self) -> str:
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            response = httpx.get(url, timeout=self.timeout)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise CoeTokenError(
                503, f"the OIDC issuer's configuration could not be read from {url} ({exc}); try again"
            ) from exc
        if (
            not isinstance(document, dict)
            or document.get("issuer") != self.issuer
            or not isinstance(document.get("jwks_uri"), str)
        ):
            raise CoeTokenError(503, f"{url} does not describe the issuer {self.issuer} with a jwks_uri")
        return str(document["jwks_uri"])


def runner_of(claims: dict[str, Any], leeway: float = LEEWAY_SECONDS) -> Runner:
    """The claims a CoE runner's token must carry: a workflow_dispatch run of waooaw-coe.yml in its own repository."""
    repository, owner = claims["repository"], claims["repository_owner"]
    if not isinstance(repository, str) or not _REPOSITORY.match(repository):
        raise TokenRefused(f"repository {repository!r} is not OWNER/NAME")
    if owner != repository.partition("/")[0]:
        raise TokenRefused(f"repository_owner {owner!r} does not own {repository}")
    if claims["event_name"] != "workflow_dispatch":
        raise TokenRefused(f"event_name is {claims['event_name']!r}, not workflow_dispatch")
    workflow, _, ref = str(claims["workflow_ref"]).partition("@")
    if workflow != f"{repository}/{WORKFLOW_PATH}" or not ref.startswith("refs/"):
        raise TokenRefused(f"workflow_ref {claims['workflow_ref']!r} is not {repository}/{WORKFLOW_PATH}@refs/…")
    jti = claims["jti"]
    if not isinstance(jti, str) or not 0 < len(jti) <= JTI_MAX:
        raise TokenRefused(f"jti is not a string of 1 to {JTI_MAX} characters")
    expires_in = float(claims["exp"]) - datetime.now(UTC).timestamp()
    if expires_in > LONGEST_LIFETIME.total_seconds():
        raise TokenRefused(f"it expires in {expires_in:.0f} s, more than an Actions OIDC token lives")
    usable_until = datetime.now(UTC) + timedelta(seconds=expires_in + leeway)
    return Runner(
        repository,
        _github_id(claims, "repository_id"),
        _github_id(claims, "repository_owner_id"),
        str(claims["run_id"]),
        ref,
        jti,
        usable_until,
    )


def _github_id(claims: dict[str, Any], name: str) -> int:
    """GitHub's OIDC tokens carry ids as strings of digits."""
    value = claims[name]
    if not _GITHUB_ID.fullmatch(str(value)) or isinstance(value, bool):
        raise TokenRefused(f"{name} {value!r} is not a GitHub id")
    return int(value)


# --------------------------------------------------------------------------- the job and its token


def owning_installation(session: Session, runner: Runner) -> int:
    """The active installation whose repositories include the runner's, installed on the repository
    and the account the runner's ids name; Forbidden if there is none."""
    repo = runner.repository
    statuses = tenancy.installations_of(session, repo)
    active = tenancy.first_active(statuses)
    if active is not None:
        refuse_other_ids(session.get(Installation, active), runner)
        return active
    if statuses:
        state = "uninstalled" if "deleted" in statuses.values() else "suspended"
        raise Forbidden(f"the WAOOAW App's installation on {repo} is {state}")
    raise Forbidden(f"{repo} is not in any installation of the WAOOAW App: install the App on it")


def refuse_other_ids(installation: Installation | None, runner: Runner) -> None:
    """Forbidden if the runner's repository or owner is not the one the installation was made on."""
    if installation is None:
        return
    refused = tenancy.ids_refused(installation, runner.repository, runner.repository_id, runner.owner_id)
    if refused is not None:
        raise Forbidden(f"{refused}: if it was renamed or made again since, reinstall the WAOOAW App on it")


def issue_job_token(
    store: Store, runner: Runner, job: str, ttl: timedelta, workflow_refs: tuple[str, ...]
) -> IssuedToken:
    """A Context API token for the job of the runner's repository, bound to that repository, if the
    job exists and goes on, the run may work on it, and its OIDC token was never exchanged before."""
    with store.reading() as session:
        installation = owning_installation(session, runner)
    contexts = DbContextClient(store, Grant(installation, actor=runner.actor))
    record = contexts.get(runner.repository, job_record.AGENT, job)
    if record is None:
        raise NotFound(f"no job {job} in {runner.repository}")
    status = record.data.get("status")
    if status in JOB_FINISHED:
        raise Conflict(f"job {job} is {status}: it takes no more work; start a new job")
    check_workflow_ref(runner, job, workflow_refs, default_branch_of(contexts, runner.repository, job))
    with store.session() as session:
        remember_exchange(session, runner, job)
        row = session.get(Installation, installation, with_for_update=True)
        refuse_other_ids(row, runner)  # again under the lock: two first exchanges may race
        if row is not None:
            tenancy.remember_ids(row, runner.repository, runner.repository_id, runner.owner_id)
        return tokens.issue(
            session, installation_id=installation, job_id=job, repo=runner.repository, ttl=ttl, created_by=runner.actor
        )


def default_branch_of(contexts: ContextClient, repo: str, job: str) -> str | None:
    """The repository's default branch as the job's first record says: the app wrote it from the
    event of the command that started the job. Later versions are the runner's own, written with
    the token this exchange gives, so they cannot vouch for the runner."""
    first = contexts.get(repo, job_record.AGENT, job, version=1)
    branch = first.data.get("default_branch") if first is not None else None
    return branch if isinstance(branch, str) and branch else None


def check_workflow_ref(runner: Runner, job: str, workflow_refs: tuple[str, ...], default_branch: str | None) -> None:
    """The run's workflow file must come from a ref WAOOAW_OIDC_WORKFLOW_REFS names, or by default
    from the repository's default branch: a branch anyone with push access can make would otherwise
    run its own waooaw-coe.yml with the job's tokens."""
    repo, ref = runner.repository, runner.ref
    if workflow_refs:
        if not any(fnmatchcase(ref, pattern) for pattern in workflow_refs):
            raise Forbidden(
                f"this run of {repo}'s CoE workflow is from {ref}, and WAOOAW_OIDC_WORKFLOW_REFS "
                f"accepts {', '.join(workflow_refs)} only"
            )
        return
    if default_branch is None:
        raise Forbidden(
            f"job {job} recorded no default branch of {repo} (it was started outside the app, or before "
            "jobs recorded it), so no run may work on it: set WAOOAW_OIDC_WORKFLOW_REFS to the refs whose "
            "CoE workflow may, or start a new job"
        )
    expected = f"refs/heads/{default_branch}"
    if ref != expected:
        raise Forbidden(
            f"{repo}'s CoE workflow may run jobs from the default branch ({expected}) only, and this run "
            f"is from {ref}: dispatch it on {expected}, or set WAOOAW_OIDC_WORKFLOW_REFS to accept other refs"
        )


def remember_exchange(session: Session, runner: Runner, job: str) -> None:
    """One job token per OIDC token: its jti is kept until the token could no longer be presented
    (and forgotten then); Conflict if it was exchanged before."""
    now = datetime.now(UTC)
    session.execute(delete(OidcExchange).where(OidcExchange.expires_at < now))
    insert = dialect_insert(session.get_bind().dialect.name, OidcExchange).values(
        jti=runner.jti, job_id=job, created_at=now, expires_at=runner.usable_until
    )
    if (
        session.execute(insert.on_conflict_do_nothing(index_elements=["jti"]).returning(OidcExchange.jti)).first()
        is None
    ):
        raise Conflict(
            "this OIDC token was already exchanged for a job token: ask GitHub Actions for a new OIDC token "
            "for every exchange"
        )


def revoke(store: Store, issued: IssuedToken, runner: Runner) -> None:
    with store.session() as session:
        tokens.revoke(session, issued.id, actor=runner.actor)


async def runner_github_token(clients: GitHubClients, store: Store, issued: IssuedToken, runner: Runner) -> str:
    """An installation token for the runner's repository alone; without it the job token is revoked again."""
    try:
        return await clients.repository_token(issued.installation_id, runner.repository, RUNNER_PERMISSIONS)
    except GitHubException as exc:
        await run_in_threadpool(revoke, store, issued, runner)
        raise CoeTokenError(
            502,
            f"GitHub refused an installation token for {runner.repository} ({exc.__class__.__name__}); "
            "check that the App may write contents, issues and pull requests there",
        ) from exc


async def read_request(request: Request) -> CoeTokenRequest:
    try:
        await read_json_body(request)
        asked = CoeTokenRequest.model_validate(await request.json() if await request.body() else None)
        check_segment("job", asked.job, tokens.JOB_ID_MAX)
    except (InvalidRequest, ValidationError) as exc:
        raise CoeTokenError(400, 'send JSON {"job": "<job id>", "oidc_token": "<the run\'s OIDC token>"}') from exc
    return asked


# --------------------------------------------------------------------------- the route


def router(settings: Settings, store: Store) -> APIRouter:
    oidc = ActionsOidc(settings.oidc_issuer, settings.oidc_audience)
    clients = github_clients(settings)
    app_clients = clients if clients is not None and clients.mode == "app" else None
    route = APIRouter(tags=["coe"])

    @route.post(
        "/coe/token",
        status_code=201,
        response_model=CoeTokenGranted,
        responses={status: {"model": ErrorBody} for status in (400, 401, 403, 404, 409, 502, 503)},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": CoeTokenRequest.model_json_schema()}},
            }
        },
    )
    async def coe_token(request: Request) -> Response:
        """Trade a GitHub Actions OIDC token of a waooaw-coe.yml run for the tokens of its job."""
        job: str | None = None
        try:
            asked = await read_request(request)
            job = asked.job
            runner = await run_in_threadpool(oidc.verify, asked.oidc_token)
            issued = await run_in_threadpool(
                issue_job_token, store, runner, job, settings.coe_token_ttl, settings.oidc_workflow_refs
            )
            github_token = None
            if app_clients is not None:
                github_token = await runner_github_token(app_clients, store, issued, runner)
        except TokenRefused as refused:
            log.warning("coe.token_refused", job=job, status=401, reason=str(refused))
            return error_response(Unauthorized(REFUSED))
        except ContextError as error:
            log.warning("coe.token_refused", job=job, status=error.status, reason=error.message)
            return error_response(error)
        log.info(
            "coe.token_issued",
            job=job,
            repository=runner.repository,
            run_id=runner.run_id,
            installation_id=issued.installation_id,
            token_id=issued.id,
            github_token=github_token is not None,
        )
        granted = CoeTokenGranted(
            token=issued.token,
            expires_at=issued.expires_at.isoformat(),
            job=job,
            installation_id=issued.installation_id,
            repo=runner.repository,
            github_token=github_token,
        )
        return JSONResponse(granted.model_dump(), status_code=201, headers={"Cache-Control": "no-store"})

    return route
