"""POST /webhooks/github against the real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio

import pytest
from fastapi.testclient import TestClient

from agents.context.models import InboxRecord
from bot.app import create_app
from bot.bus import LocalBus
from bot.settings import MAX_BODY_BYTES
from tests.conftest import FIXTURES, TEST_SECRET, fixture_path, load_payload
from tests.helpers import body_of, drain, make_platform, signed_headers


@pytest.fixture
def platform(store):
    return make_platform(store)


@pytest.fixture
def client(platform):
    # The worker is driven by the tests themselves; intake alone is under test here.
    with TestClient(create_app(platform, secret=TEST_SECRET, run_worker=False)) as client:
        yield client


def post(client, body: bytes, event: str, delivery: str | None = None, **header_overrides):
    headers = signed_headers(body, event, delivery)
    headers.update(header_overrides)
    return client.post("/webhooks/github", content=body, headers=headers)


def comment_body(text: str) -> bytes:
    return body_of(load_payload("issue_comment/created.payload.json", comment__body=text))


def test_wanted_event_is_committed_before_202_and_queued(client, platform, store):
    body = comment_body("/waooaw help")
    response = post(client, body, "issue_comment", "delivery-1")
    assert response.status_code == 202
    assert response.json() == {"delivery": "delivery-1", "status": "queued"}
    with store.session() as session:
        row = session.get(InboxRecord, "delivery-1")
    assert row is not None and row.status == "queued" and row.body == body
    assert row.event == "issue_comment" and row.action == "created" and row.repo == "Codertocat/Hello-World"
    assert asyncio.run(platform.bus.depth()) == 1


def test_repeated_delivery_is_duplicate_and_not_queued_again(client, platform):
    body = comment_body("/waooaw status")
    assert post(client, body, "issue_comment", "same-id").json()["status"] == "queued"
    again = post(client, body, "issue_comment", "same-id")
    assert again.status_code == 202 and again.json()["status"] == "duplicate"
    assert asyncio.run(platform.bus.depth()) == 1


def test_event_no_agent_wants_is_recorded_and_ignored(client, store):
    body = fixture_path("star/created.payload.json").read_bytes()
    response = post(client, body, "star", "star-1")
    assert response.status_code == 202 and response.json()["status"] == "ignored"
    with store.session() as session:
        assert session.get(InboxRecord, "star-1").status == "ignored"


def test_ping_is_answered_pong(client):
    body = fixture_path("ping/payload.json").read_bytes()
    response = post(client, body, "ping")
    assert response.status_code == 202 and response.json()["status"] == "pong"


@pytest.mark.parametrize("signature", [None, "sha1=abc", "sha256=" + "0" * 64])
def test_bad_signature_is_401_and_records_nothing(client, store, signature):
    body = comment_body("/waooaw help")
    headers = signed_headers(body, "issue_comment", "bad-sig")
    headers.pop("X-Hub-Signature-256")
    if signature:
        headers["X-Hub-Signature-256"] = signature
    response = client.post("/webhooks/github", content=body, headers=headers)
    assert response.status_code == 401
    with store.session() as session:
        assert session.get(InboxRecord, "bad-sig") is None


def test_signature_made_with_another_secret_is_401(client):
    body = comment_body("/waooaw help")
    headers = signed_headers(body, "issue_comment", secret="not-the-secret")
    assert client.post("/webhooks/github", content=body, headers=headers).status_code == 401


def test_truncated_json_is_400(client):
    body = comment_body("/waooaw help")[:-40]
    response = post(client, body, "issue_comment")
    assert response.status_code == 400 and "JSON" in response.json()["error"]


def test_missing_event_header_is_400(client):
    body = comment_body("/waooaw help")
    headers = signed_headers(body, "issue_comment")
    headers.pop("X-GitHub-Event")
    assert client.post("/webhooks/github", content=body, headers=headers).status_code == 400


def test_body_over_25_mib_is_413_whatever_the_signature(client):
    body = b"{" + b" " * (26 * 1024 * 1024) + b"}"
    assert len(body) > MAX_BODY_BYTES
    response = client.post("/webhooks/github", content=body, headers={"X-GitHub-Event": "push"})
    assert response.status_code == 413


def test_size_is_checked_while_reading_when_no_length_is_declared(client):
    chunk = b" " * (1024 * 1024)

    def chunks():
        yield b"{"
        for _ in range(26):
            yield chunk
        yield b"}"

    response = client.post("/webhooks/github", content=chunks(), headers={"X-GitHub-Event": "push"})
    assert response.status_code == 413


def all_fixture_files():
    seen = {}
    for base in FIXTURES:
        for path in sorted(base.glob("*/*.json")):
            seen.setdefault(path.relative_to(base).as_posix(), path)
    return sorted(seen.items())


def test_every_real_payload_is_accepted_routed_or_ignored_and_processed_without_failure(store):
    platform = make_platform(store, bus=LocalBus(backoff_base=0.01, max_deliveries=1))
    files = all_fixture_files()
    assert len(files) > 200, "the real payload fixtures are missing"
    answers = {}
    with TestClient(create_app(platform, secret=TEST_SECRET, run_worker=False)) as client:
        for index, (name, path) in enumerate(files):
            event = name.split("/", 1)[0]
            response = post(client, path.read_bytes(), event, f"fixture-{index}")
            assert response.status_code == 202, (name, response.status_code, response.text)
            answers[name] = response.json()["status"]
    assert set(answers.values()) <= {"queued", "ignored", "pong"}
    assert "queued" in answers.values() and "ignored" in answers.values()

    asyncio.run(drain(platform))
    with store.session() as session:
        statuses = {row.delivery_id: row.status for row in session.query(InboxRecord)}
    assert len(statuses) == len(files)
    assert set(statuses.values()) <= {"done", "ignored"}, {k: v for k, v in statuses.items() if v not in ("done", "ignored")}


def test_a_batch_with_old_and_repeated_ids_reports_only_the_new_ones(store):
    from bot.inbox import Inbox, InboxStatus
    from bot.webhooks import parse

    def delivery(delivery_id):
        return parse(comment_body("/waooaw help"), event="issue_comment", delivery_id=delivery_id)

    inbox = Inbox(store)
    assert inbox.record(delivery("old"), InboxStatus.QUEUED)
    new = inbox.record_many([(delivery(i), InboxStatus.QUEUED) for i in ("a", "old", "b", "a")])
    assert new == {"a", "b"}


def test_concurrent_requests_share_commits_and_each_learns_its_own_answer(store):
    from bot.inbox import Inbox, InboxStatus, InboxWriter
    from bot.webhooks import parse

    writer = InboxWriter(Inbox(store))

    async def scenario():
        deliveries = [parse(comment_body("/waooaw help"), event="issue_comment", delivery_id=f"w{n % 30}") for n in range(60)]
        answers = await asyncio.gather(*(writer.record(d, InboxStatus.QUEUED) for d in deliveries))
        await writer.close()
        return answers

    answers = asyncio.run(scenario())
    assert answers.count(True) == 30 and answers.count(False) == 30
    assert answers[:30] == [True] * 30


def test_intake_survives_the_database_dropping_its_connections(pg_store, postgres_admin):
    from sqlalchemy import text

    from bot.inbox import Inbox, InboxStatus, InboxWriter
    from bot.webhooks import parse

    writer = InboxWriter(Inbox(pg_store))

    def delivery(delivery_id):
        return parse(comment_body("/waooaw help"), event="issue_comment", delivery_id=delivery_id)

    async def scenario():
        assert await writer.record(delivery("before"), InboxStatus.QUEUED)
        with pg_store.engine.connect() as connection:
            pid = connection.execute(text("SELECT pg_backend_pid()")).scalar()
        with postgres_admin.connect() as admin:  # what a server restart does to pooled connections
            assert admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
        answer = await writer.record(delivery("after"), InboxStatus.QUEUED)
        await writer.close()
        return answer

    assert asyncio.run(scenario()) is True
    assert Inbox(pg_store).get("after") is not None
