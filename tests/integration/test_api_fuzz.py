"""The app against its own /openapi.json: schemathesis generates requests, valid and invalid, for every
operation, with a valid token, on the real PostgreSQL (where a NUL or an out-of-range number bites).

No answer may be a 5xx, and every answer must be one the schema documents: its status, its content
type and its body. Hypothesis runs derandomized and without its example database, so a run is the
same every time; the number of cases it made is printed at the end of the test session
(tests/conftest.py). The answers random inputs rarely reach (401, 413, 415, 429, the webhook's
400) are sent one by one below and checked against the same schema.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.modes import GenerationMode
from schemathesis.schemas import APIOperation, BaseSchema
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from agents.context.client import DbContextClient
from agents.store.db import Store
from agents.tokens import Grant
from bot.api.json_body import API_BODY_MAX_BYTES
from bot.app import create_app
from tests.conftest import FUZZ_CASES, TEST_SECRET
from tests.context_api_support import bearer, issue, live_server
from tests.fakes.oidc import FakeOidcIssuer
from tests.helpers import make_platform, make_settings, signed_headers

EXAMPLES = 40  # per operation and mode (valid, invalid): about 1,000 requests, half a minute on 2 cores
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
REPO, AGENT, SCOPE = "octo/alpha", "learning-curator", "job-1"


def seed(store: Store) -> str:
    """An installation with contexts, a snapshot and a handoff to find; its token (not job-scoped)."""
    contexts = DbContextClient(store, Grant(1))
    contexts.put(
        REPO,
        AGENT,
        SCOPE,
        {"lessons": ["keep it small"]},
        expected_version=None,
        summary="what the job learned",
        tags=["issue:1", "status:parked"],
    )
    contexts.put(REPO, AGENT, f"{SCOPE}:intake", {"step": 1}, expected_version=None, summary="intake")
    contexts.service.snapshot(Grant(1), REPO, SCOPE)
    contexts.service.create_handoff(
        Grant(1),
        repo=REPO,
        scope=SCOPE,
        from_agent=AGENT,
        to_agent="reviewer",
        package={"deliverable": "spec", "open_questions": [], "provenance": {}},
    )
    return issue(store, 1)


@pytest.fixture
def served(pg_store: Store) -> Iterator[tuple[str, str]]:
    """The whole app on a live server (its base URL), and a token; the rate limit out of the way."""
    token = seed(pg_store)
    with FakeOidcIssuer() as issuer:
        settings_ = make_settings(
            WAOOAW_API_RATE_LIMIT=1_000_000, WAOOAW_API_RATE_BURST=1_000_000, WAOOAW_OIDC_ISSUER=issuer.url
        )
        app = create_app(make_platform(pg_store, settings=settings_), secret=TEST_SECRET, run_worker=False)
        with live_server(app) as url:
            yield url, token


def fuzz(operation: APIOperation, mode: GenerationMode, token: str, cases: Counter[str]) -> str | None:
    """EXAMPLES cases of one operation; what went wrong, or None."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck)
    )
    def run(case: Any) -> None:
        cases[operation.label] += 1
        case.call_and_validate(headers=bearer(token), checks=CHECKS)

    try:
        run()
    except Unsatisfiable:  # no parameters or body to make invalid: the valid run covers it
        if mode is GenerationMode.POSITIVE:
            return f"{operation.label}: no valid request could be generated"
    except (FailureGroup, Exception) as failure:  # noqa: BLE001 - schemathesis's report of the failing case is the message
        return f"{operation.label} ({mode.value} data):\n{failure}"
    return None


def test_no_request_gets_a_5xx_and_every_answer_is_the_schemas(served, pytestconfig):
    url, token = served
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    cases = pytestconfig.stash.setdefault(FUZZ_CASES, Counter())
    operations = [result.ok() for result in schema.get_all_operations()]
    failures = [
        failure
        for operation in operations
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        if (failure := fuzz(operation, mode, token, cases)) is not None
    ]
    assert not failures, "\n\n".join(failures)
    assert {operation.label for operation in operations} <= set(cases), "every operation was called"


# ----------------------------------------------------------------------------- the rarer answers


@pytest.fixture
def strict(pg_store: Store) -> Iterator[tuple[str, BaseSchema]]:
    """The app with a rate limit of one request a token (then one every 100 s), and its schema."""
    seed(pg_store)
    settings_ = make_settings(WAOOAW_API_RATE_LIMIT=0.01, WAOOAW_API_RATE_BURST=1)
    with live_server(
        create_app(make_platform(pg_store, settings=settings_), secret=TEST_SECRET, run_worker=False)
    ) as url:
        yield url, schemathesis.openapi.from_url(f"{url}/openapi.json")


CONTEXT = f"/api/v1/contexts/{REPO}/{AGENT}/new-scope"
JSON = {"Content-Type": "application/json"}
ANSWERS: dict[str, tuple[str, str, int]] = {  # name: (method, path of the schema, status)
    "a report date out of range": ("GET", "/api/v1/reports/daily/{day}", 400),
    "a signed delivery that is not JSON": ("POST", "/webhooks/github", 400),
    "an unsigned delivery": ("POST", "/webhooks/github", 401),
    "no token": ("GET", "/api/v1/contexts", 401),
    "a body over the limit": ("PUT", "/api/v1/contexts/{owner}/{repo}/{agent}/{scope}", 413),
    "a body that is not JSON": ("PUT", "/api/v1/contexts/{owner}/{repo}/{agent}/{scope}", 415),
    "a body that does not parse": ("PUT", "/api/v1/contexts/{owner}/{repo}/{agent}/{scope}", 422),
    "a parameter out of range": ("GET", "/api/v1/contexts/{owner}/{repo}/{agent}/{scope}", 422),
    "over the rate limit": ("GET", "/api/v1/contexts", 429),
    "the metrics": ("GET", "/metrics", 200),
}


def send(name: str, url: str, token: str) -> requests.Response:
    auth = bearer(token)
    if name == "a report date out of range":
        return requests.get(f"{url}/api/v1/reports/daily/0001-01-01", headers=auth, timeout=10)
    if name == "a signed delivery that is not JSON":
        return requests.post(f"{url}/webhooks/github", data=b"{", headers=signed_headers(b"{", "push"), timeout=10)
    if name == "an unsigned delivery":
        return requests.post(f"{url}/webhooks/github", data=b"{}", headers={"X-GitHub-Event": "push"}, timeout=10)
    if name == "no token":
        return requests.get(f"{url}/api/v1/contexts", timeout=10)
    if name == "a body over the limit":
        body = json.dumps({"data": {"text": "x" * API_BODY_MAX_BYTES}})
        return requests.put(f"{url}{CONTEXT}", data=body, headers={**auth, **JSON}, timeout=30)
    if name == "a body that is not JSON":
        return requests.put(f"{url}{CONTEXT}", data="data", headers={**auth, "Content-Type": "text/plain"}, timeout=10)
    if name == "a body that does not parse":
        return requests.put(f"{url}{CONTEXT}", data="{", headers={**auth, **JSON}, timeout=10)
    if name == "a parameter out of range":
        return requests.get(
            f"{url}/api/v1/contexts/{REPO}/{AGENT}/{SCOPE}?version=3000000000", headers=auth, timeout=10
        )
    if name == "over the rate limit":
        requests.get(f"{url}/api/v1/contexts", headers=auth, timeout=10)
        return requests.get(f"{url}/api/v1/contexts", headers=auth, timeout=10)
    assert name == "the metrics"
    return requests.get(f"{url}/metrics", timeout=10)


def test_each_documented_refusal_and_the_metrics_are_the_schemas(strict, pg_store, pytestconfig):
    url, schema = strict
    cases = pytestconfig.stash.setdefault(FUZZ_CASES, Counter())
    wrong = []
    for name, (method, path, status) in ANSWERS.items():
        answer = send(name, url, issue(pg_store, 1))  # a token each: one request each under the limit
        cases[f"{method} {path}"] += 1
        try:
            assert answer.status_code == status, f"{answer.status_code}, not {status}: {answer.text}"
            schema[path][method].Case().validate_response(answer, checks=CHECKS)
        except (FailureGroup, AssertionError) as failure:
            wrong.append(f"{name}: {failure}")
    assert not wrong, "\n\n".join(wrong)
