"""Hostile input to the Context API and the report API: a clear 4xx, never a 5xx, on both stores;
and a NUL stored before it was refused never breaks a search (issue 13, points 5 and 9)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select, text, update

from agents.context.client import DbContextClient
from agents.context.models import ContextVersion, Handoff
from agents.domain.agent import change_job
from agents.domain.job import AGENT, Escalation, Job, new_job
from agents.llm import LLMClient
from agents.store.db import Store
from agents.tokens import Grant
from bot.app import create_app
from bot.wiring import Platform
from tests.conftest import TEST_SECRET, load_payload, postgres_schema_url
from tests.context_api_support import api_app, bearer, issue
from tests.fakes.github import FakeGitHub
from tests.helpers import delivering, github_platform, make_platform, make_settings

CONTEXT = "/api/v1/contexts/octo/hello/wowvision/job-1"


@pytest.fixture
def client(store: Store) -> Any:
    with TestClient(api_app(store)) as client:
        yield client


@pytest.fixture
def token(store: Store) -> str:
    return issue(store, 1)


def store_as_before(
    store: Store, scope: str, tags: list[str], repo: str = "octo/hello", agent: str = "wowvision"
) -> None:
    """A version written as the API wrote it before it refused NUL: straight into the table."""
    with store.session() as session:
        session.execute(
            insert(ContextVersion).values(
                installation_id=1,
                repo=repo,
                agent=agent,
                scope=scope,
                version=1,
                data={},
                summary="",
                tags=tags,
                created_at=datetime.now(UTC),
            )
        )


def found(client: TestClient, token: str, query: str) -> list[str]:
    answer = client.get(f"/api/v1/contexts?{query}", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return [item["scope"] for item in answer.json()["items"]]


# --------------------------------------------------------------------------- point 5: one NUL


def test_a_nul_tag_stored_before_breaks_no_search(client, store, token):
    store_as_before(store, "poisoned", ["x\u0000", "keep", "\\u0000 as text"])
    assert client.put(CONTEXT, json={"data": {}, "tags": ["keep"]}, headers=bearer(token)).status_code == 201
    assert found(client, token, "tag=keep") == ["job-1", "poisoned"]
    assert found(client, token, "tag=keep&tag=%5Cu0000%20as%20text") == ["poisoned"]
    assert found(client, token, "tag=other") == []


def test_an_answer_still_reaches_its_parked_job_after_someone_stored_a_nul_tag(store):
    """WowDomain finds the job an `/answer` is for by a tag search: the one a stored NUL broke."""
    repo = "Codertocat/Hello-World"  # issue_comment/created.with-installation: installation 1, issue 1
    contexts = DbContextClient(store, Grant(1))
    job = new_job(
        job_id="job-00000000ab", domain="Payments", depth="quick", repo=repo, installation_id=1, issue_number=1
    )
    job.status = "parked"
    job.escalations = [
        Escalation(n=1, kind="confidence", step="validation.gate", question="Is it right?", issue_number=9)
    ]
    contexts.put(repo, AGENT, job.id, job.data(), expected_version=None)
    change_job(contexts, repo, job.id, lambda j: j)  # its record with its tags: status:parked, issue:1
    store_as_before(store, "poisoned", ["x\u0000"], repo=repo, agent=AGENT)  # as any token of the installation could
    with FakeGitHub() as fake:
        fake.set_permission("Codertocat", "write")

        def platform() -> Platform:
            built = github_platform(store, fake.url)
            built.llm = LLMClient("test-key", "claude-sonnet-5-5")  # configured; never called
            return built

        payload = load_payload("issue_comment/created.with-installation.payload.json", comment__body="/answer Yes.")
        with delivering(platform) as deliver:
            deliver("issue_comment", payload)
    after = Job.model_validate(contexts.get(repo, AGENT, job.id).data)
    assert after.escalations[0].answer == "Yes." and after.status == "queued"
    assert [dispatch["inputs"]["job"] for dispatch in fake.dispatches] == [job.id]


@pytest.fixture(params=["sqlite", "pg"])
def store_before_0007(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store migrated up to revision 0006, the last one that stored U+0000 as it came."""
    if request.param == "sqlite":
        store = Store(f"sqlite:///{tmp_path / 'waooaw.db'}")
    else:
        schema = f"t_{uuid.uuid4().hex[:12]}"
        admin = request.getfixturevalue("postgres_admin")
        with admin.connect() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))

        def drop() -> None:
            with admin.connect() as connection:
                connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))

        request.addfinalizer(drop)  # after the store is disposed of, below
        store = Store(postgres_schema_url(schema))
    store.upgrade("0006")
    yield store
    store.dispose()


def test_the_migration_replaces_the_nul_that_was_stored_and_keeps_the_rest(store_before_0007):
    store = store_before_0007
    kept = {"text": "\\u0000 as text, \u0001 and all"}
    store_as_before(store, "poisoned", ["x\u0000", "keep"])
    store_as_before(store, "clean", ["\\u0000 as text"])
    with store.session() as session:
        session.execute(
            update(ContextVersion)
            .where(ContextVersion.scope == "poisoned")
            .values(data={"a\u0000": ["b\u0000"], **kept})
        )
        session.execute(update(ContextVersion).where(ContextVersion.scope == "clean").values(data=kept))
        session.execute(
            insert(Handoff).values(
                installation_id=1,
                repo="octo/hello",
                scope="poisoned",
                from_agent="a",
                to_agent="b",
                package={"deliverable": "x\u0000"},
            )
        )
    store.upgrade()
    with store.reading() as session:
        rows = {row.scope: (row.tags, row.data) for row in session.scalars(select(ContextVersion))}
        package = session.scalars(select(Handoff.package)).one()
    assert rows == {
        "poisoned": (["x\ufffd", "keep"], {"a\ufffd": ["b\ufffd"], **kept}),
        "clean": (["\\u0000 as text"], kept),
    }
    assert package == {"deliverable": "x\ufffd"}


@pytest.mark.parametrize(
    "body",
    [
        {"data": {}, "tags": ["x\u0000"]},
        {"data": {}, "tags": ["line\nbreak"]},
        {"data": {}, "summary": "a NUL \u0000 here"},
        {"data": {"deep": [{"text": "x\u0000"}]}},
        {"data": {"key\u0000": 1}},
    ],
    ids=["NUL tag", "control in a tag", "NUL summary", "NUL in data", "NUL in a data key"],
)
def test_a_write_holding_nul_or_a_control_character_in_a_name_is_refused_and_keeps_nothing(client, token, body):
    answer = client.put(CONTEXT, json=body, headers=bearer(token))
    assert answer.status_code == 422, answer.text
    assert "U+0000" in answer.text or "U+000A" in answer.text
    assert client.get(CONTEXT, headers=bearer(token)).status_code == 404


def test_a_summary_keeps_its_line_breaks_and_tabs_but_not_a_nul(client, token):
    summary = "first line\n\tsecond line\r\n"
    assert (
        client.put(CONTEXT, json={"data": {}, "summary": summary + "\u0000"}, headers=bearer(token)).status_code == 422
    )
    assert client.put(CONTEXT, json={"data": {}, "summary": summary}, headers=bearer(token)).status_code == 201
    assert client.get(CONTEXT, headers=bearer(token)).json()["summary"] == summary


# --------------------------------------------------------------------------- point 9: ten 5xx


def cursor(before: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"before": before}).encode()).decode().rstrip("=")


HANDOFF = {
    "owner": "octo",
    "repo": "hello",
    "scope": "job-1",
    "from_agent": "wowvision",
    "to_agent": "reviewer",
    "package": {"deliverable": "spec"},
}

REFUSED: dict[str, tuple[str, str, Any]] = {  # name: (method, path, JSON body, as a value or as text, or None)
    "a cursor past 2^63": ("GET", f"/api/v1/contexts?cursor={cursor(2**63)}", None),
    "a version past a 32-bit integer": ("GET", f"{CONTEXT}?version=3000000000", None),
    "a lineage version past a 32-bit integer": ("GET", f"{CONTEXT}/lineage?version=3000000000", None),
    "a handoff version past a 32-bit integer": ("POST", "/api/v1/handoffs", {**HANDOFF, "version": 11090392275}),
    "a snapshot id past 2^63": ("POST", f"/api/v1/snapshots/{2**63}/restore", None),
    "a handoff id past 2^63": ("GET", f"/api/v1/handoffs/{2**63}", None),
    "a claim of a handoff id past 2^63": ("POST", f"/api/v1/handoffs/{2**63}/claim", None),
    "a NUL in q": ("GET", "/api/v1/contexts?q=x%00", None),
    "a NUL in tag": ("GET", "/api/v1/contexts?tag=x%00", None),
    "a NUL in scope_prefix": ("GET", "/api/v1/contexts?scope_prefix=job%00", None),
    "a NUL in owner": ("GET", "/api/v1/contexts?owner=octo%00", None),
    "a NUL in agent": ("GET", "/api/v1/contexts?agent=wowvision%00", None),
    "a control character in repo": ("GET", "/api/v1/contexts?repo=hello%1b", None),
    "a NUL in a handoff filter": ("GET", "/api/v1/handoffs?to_agent=reviewer%00", None),
    "a NUL in summary": ("PUT", CONTEXT, {"data": {}, "summary": "x\u0000"}),
    "a NUL in an open question": (
        "POST",
        "/api/v1/handoffs",
        {**HANDOFF, "package": {"deliverable": "spec", "open_questions": ["x\u0000"]}},
    ),
    "a NUL in a deliverable": ("POST", "/api/v1/handoffs", {**HANDOFF, "package": {"deliverable": {"a": "\u0000"}}}),
    "a package nested 1,000 deep": (
        "POST",
        "/api/v1/handoffs",
        json.dumps(HANDOFF).replace('"spec"', "[" * 1000 + "]" * 1000),
    ),
}


@pytest.mark.parametrize("name", REFUSED)
def test_a_bad_input_is_a_422_not_a_500(client, token, name):
    method, path, body = REFUSED[name]
    assert client.put(CONTEXT, json={"data": {}}, headers=bearer(token)).status_code == 201  # something to reach
    if isinstance(body, str):  # too deep for the client's own encoder
        answer = client.request(
            method, path, content=body, headers={**bearer(token), "Content-Type": "application/json"}
        )
    else:
        answer = client.request(method, path, json=body, headers=bearer(token))
    assert answer.status_code == 422, answer.text


@pytest.mark.parametrize(
    ("since", "until", "scopes"),
    [
        ("0001-01-01T00:00:00+14:00", None, ["job-1"]),
        (None, "0001-01-01T00:00:00+14:00", []),
        (None, "9999-12-31T23:59:59-14:00", ["job-1"]),
        ("9999-12-31T23:59:59-14:00", None, []),
    ],
)
def test_dates_past_the_calendar_in_utc_are_clamped(client, token, since, until, scopes):
    assert client.put(CONTEXT, json={"data": {}}, headers=bearer(token)).status_code == 201
    query = "&".join(
        f"{name}={value.replace('+', '%2B')}" for name, value in (("since", since), ("until", until)) if value
    )
    assert found(client, token, query) == scopes


@pytest.mark.parametrize("day", ["0001-01-01", "0001-01-14", "1969-12-31"])
def test_a_report_date_before_1970_is_a_400(store, day):
    platform = make_platform(store, settings=make_settings(WAOOAW_REPORTS_TOKEN="reader"))
    client = TestClient(create_app(platform, secret=TEST_SECRET, run_worker=False))
    for path in (f"/api/v1/reports/daily/{day}", f"/reports/daily/{day}"):
        answer = client.get(path, headers={"Authorization": "Bearer reader"})
        assert answer.status_code == 400 and "1970-01-01" in answer.json()["detail"], (path, answer.text)


def nested(levels: int) -> Any:
    value: Any = "deepest"
    for _ in range(levels):
        value = [value]
    return value


def test_data_and_packages_nest_at_most_64_levels(client, token):
    assert client.put(CONTEXT, json={"data": {"a": nested(63)}}, headers=bearer(token)).status_code == 201
    answer = client.put(f"{CONTEXT}-2", json={"data": {"a": nested(64)}}, headers=bearer(token))
    assert answer.status_code == 422 and "data is nested deeper than 64 levels" in answer.text, answer.text
    handoff = {**HANDOFF, "package": {"deliverable": nested(63)}}
    assert client.post("/api/v1/handoffs", json=handoff, headers=bearer(token)).status_code == 201
    handoff = {**HANDOFF, "package": {"deliverable": nested(64)}}
    answer = client.post("/api/v1/handoffs", json=handoff, headers=bearer(token))
    assert answer.status_code == 422 and "package is nested deeper than 64 levels" in answer.text, answer.text
