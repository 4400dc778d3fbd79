"""The runner's side of POST /api/v1/coe/token: trade the run's GitHub Actions OIDC token for the job's tokens.

A job of `.github/workflows/waooaw-coe.yml` with `permissions: id-token: write` finds
ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN in its environment;
with them it asks GitHub for an OIDC token addressed to our audience, and the app
answers with a Context API token for the job (and a GitHub token for the repository).
No secret is passed in the workflow's inputs. Tokens never appear in error messages.

The app trades each OIDC token once (its `jti` is remembered: 409 after). So an attempt
whose answer is lost — the connection failed, or the app answered 502 or 503 — is made
again with a new OIDC token: GitHub Actions mints one, with a new `jti`, on every
request. A job token a lost answer carried is never used and expires.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from bot.settings import OIDC_AUDIENCE

REQUEST_URL = "ACTIONS_ID_TOKEN_REQUEST_URL"
REQUEST_TOKEN = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
TIMEOUT = 30.0
ATTEMPTS = 3
RETRY_WAIT = 2.0  # seconds before the second attempt, doubled before each later one
RETRIED = frozenset({502, 503})  # the app answered, but could not finish: a new attempt may

_WHAT_TO_DO = {
    400: "the request was malformed: check the job id",
    401: "the OIDC token was refused: the run must be a workflow_dispatch of .github/workflows/waooaw-coe.yml "
    "and the audience must equal the app's WAOOAW_OIDC_AUDIENCE",
    403: "the WAOOAW App is not installed on this repository, or its installation is suspended",
    404: "there is no such job in this repository: dispatch the workflow with the job id the app gave",
    409: "the job has already finished (done, failed or cancelled): start a new one; or this run's OIDC token "
    "was already exchanged",
    502: "the app could not get a GitHub token for this repository: check the App's permissions",
    503: "the app could not reach the OIDC issuer: try again",
}


class CoeAuthError(RuntimeError):
    """The exchange failed; the message says what to change. `status` is the app's answer, if it answered."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def exchange(
    api_url: str,
    job: str,
    *,
    audience: str = OIDC_AUDIENCE,
    env: Mapping[str, str] | None = None,
    timeout: float = TIMEOUT,
    attempts: int = ATTEMPTS,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """The app's answer: `{"token", "expires_at", "job", "installation_id", "repo", "github_token"}`."""
    url = api_url.rstrip("/") + "/api/v1/coe/token"
    with httpx.Client(timeout=timeout, transport=transport) as http:
        for attempt in range(1, attempts + 1):
            oidc_token = actions_oidc_token(http, audience, os.environ if env is None else env)  # a new one each time
            try:
                response = http.post(url, json={"job": job, "oidc_token": oidc_token})
            except httpx.HTTPError as exc:
                if attempt == attempts:
                    raise CoeAuthError(
                        f"could not reach the WAOOAW app at {url} "
                        f"({exc.__class__.__name__}: {exc}; {attempts} attempts)"
                    ) from exc
            else:
                if response.status_code not in RETRIED or attempt == attempts:
                    break
            sleep(RETRY_WAIT * 2 ** (attempt - 1))
    if response.status_code != 201:
        raise CoeAuthError(
            f"the WAOOAW app refused a token for job {job} ({response.status_code} {_error_of(response)}): "
            + _WHAT_TO_DO.get(response.status_code, "see the app's log"),
            response.status_code,
        )
    return dict(response.json())


def actions_oidc_token(http: httpx.Client, audience: str, env: Mapping[str, str]) -> str:
    """This run's OIDC token from GitHub Actions, addressed to `audience`."""
    request_url, request_token = env.get(REQUEST_URL), env.get(REQUEST_TOKEN)
    if not request_url or not request_token:
        raise CoeAuthError(
            f"{REQUEST_URL} and {REQUEST_TOKEN} are not set: the workflow job needs `permissions: id-token: write` "
            "(and this must run on a GitHub Actions runner)"
        )
    try:
        response = http.get(
            httpx.URL(request_url).copy_merge_params({"audience": audience}),
            headers={"Authorization": f"bearer {request_token}"},
        )
        response.raise_for_status()
        value = response.json()["value"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise CoeAuthError(f"GitHub Actions gave no OIDC token ({exc.__class__.__name__}: {exc})") from exc
    if not isinstance(value, str) or not value:
        raise CoeAuthError("GitHub Actions answered the OIDC token request without a token")
    return value


def _error_of(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"])
    except (ValueError, KeyError, TypeError):
        return response.reason_phrase
