"""The runner's side of POST /api/v1/coe/token: trade the run's GitHub Actions OIDC token for the job's tokens.

A job of `.github/workflows/waooaw-coe.yml` with `permissions: id-token: write` finds
ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN in its environment;
with them it asks GitHub for an OIDC token addressed to our audience, and the app
answers with a Context API token for the job (and a GitHub token for the repository).
No secret is passed in the workflow's inputs. Tokens never appear in error messages.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import httpx

from bot.settings import OIDC_AUDIENCE

REQUEST_URL = "ACTIONS_ID_TOKEN_REQUEST_URL"
REQUEST_TOKEN = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
TIMEOUT = 30.0

_WHAT_TO_DO = {
    400: "the request was malformed: check the job id",
    401: "the OIDC token was refused: the run must be a workflow_dispatch of .github/workflows/waooaw-coe.yml "
    "and the audience must equal the app's WAOOAW_OIDC_AUDIENCE",
    403: "the WAOOAW App is not installed on this repository, or its installation is suspended",
    404: "there is no such job in this repository: dispatch the workflow with the job id the app gave",
    409: "the job has already finished (done, failed or cancelled): start a new one",
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
) -> dict[str, Any]:
    """The app's answer: `{"token", "expires_at", "job", "installation_id", "repo", "github_token"}`."""
    with httpx.Client(timeout=timeout) as http:
        oidc_token = actions_oidc_token(http, audience, os.environ if env is None else env)
        url = api_url.rstrip("/") + "/api/v1/coe/token"
        try:
            response = http.post(url, json={"job": job, "oidc_token": oidc_token})
        except httpx.HTTPError as exc:
            raise CoeAuthError(f"could not reach the WAOOAW app at {url} ({exc.__class__.__name__}: {exc})") from exc
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
