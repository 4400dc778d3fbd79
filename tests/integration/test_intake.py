"""POST /webhooks/github against the real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import threading

import pytest
from fastapi.testclient import TestClient

from agents.store.tables import AgentRun, InboxRecord
from bot.app import create_app
from bot.bus import LocalBus
from bot.settings import WEBHOOK_BODY_MAX_BYTES
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


def test_a_repository_renamed_or_transferred_is_queued_and_its_other_actions_ignored(client):
    """Tenancy follows a repository's new name; nothing else of a `repository` delivery is kept."""
    answers = {
        action: post(client, fixture_path(f"repository/{action}.payload.json").read_bytes(), "repository").json()
        for action in ("renamed", "transferred", "edited", "created", "privatized")
    }
    assert {action: answer["status"] for action, answer in answers.items()} == {
        "renamed": "queued",
        "transferred": "queued",
        "edited": "ignored",
        "created": "ignored",
        "privatized": "ignored",
    }


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
    assert len(body) > WEBHOOK_BODY_MAX_BYTES
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
    assert set(statuses.values()) <= {"done", "ignored"}, {
        k: v for k, v in statuses.items() if v not in ("done", "ignored")
    }


def test_a_batch_with_old_and_repeated_ids_reports_only_the_new_ones(store):
    from bot.inbox import Inbox, InboxStatus
    from bot.webhooks import parse_delivery

    def delivery(delivery_id):
        return parse_delivery(comment_body("/waooaw help"), event="issue_comment", delivery_id=delivery_id)

    inbox = Inbox(store)
    assert inbox.record(delivery("old"), InboxStatus.QUEUED)
    new = inbox.record_many([(delivery(i), InboxStatus.QUEUED) for i in ("a", "old", "b", "a")])
    assert new == {"a", "b"}


def test_concurrent_requests_share_commits_and_each_learns_its_own_answer(store):
    from bot.inbox import Inbox, InboxStatus, InboxWriter
    from bot.webhooks import parse_delivery

    writer = InboxWriter(Inbox(store))

    async def scenario():
        deliveries = [
            parse_delivery(comment_body("/waooaw help"), event="issue_comment", delivery_id=f"w{n % 30}")
            for n in range(60)
        ]
        answers = await asyncio.gather(*(writer.record(d, InboxStatus.QUEUED) for d in deliveries))
        await writer.close()
        return answers

    answers = asyncio.run(scenario())
    assert answers.count(True) == 30 and answers.count(False) == 30
    assert answers[:30] == [True] * 30


def test_intake_survives_the_database_dropping_its_connections(pg_store, postgres_admin):
    from sqlalchemy import text

    from bot.inbox import Inbox, InboxStatus, InboxWriter
    from bot.webhooks import parse_delivery

    writer = InboxWriter(Inbox(pg_store))

    def delivery(delivery_id):
        return parse_delivery(comment_body("/waooaw help"), event="issue_comment", delivery_id=delivery_id)

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


# ------------------------------------------------------------------ hostile content in signed deliveries

GOOD_PAYLOADS = [
    ("issue_comment", "issue_comment/created.with-installation.payload.json"),
    ("issues", "issues/opened.payload.json"),
    ("pull_request", "pull_request/opened.payload.json"),
    ("push", "push/payload.json"),
]


def poison_payloads() -> dict[str, bytes]:
    """Signed deliveries GitHub would never send, whose derived columns the inbox cannot store as they are."""

    def comment(**overrides) -> bytes:
        payload = load_payload(
            "issue_comment/created.with-installation.payload.json", comment__body="/waooaw help", **overrides
        )
        return body_of(payload)

    return {
        "poison-long-action": comment(action="x" * 10_000),
        "poison-nul-action": comment(action="crea\u0000ted"),
        "poison-nul-repo": comment(repository__full_name="acme/wid\u0000gets"),
        "poison-text-installation": comment(installation__id="12ab"),
        "poison-huge-installation": comment(installation__id=2**70),
        "poison-u64-installation": comment(installation__id=2**64 - 1),
    }


def test_poison_deliveries_among_good_ones_fail_none_and_are_all_recorded(store):
    from concurrent.futures import ThreadPoolExecutor

    platform = make_platform(store, bus=LocalBus(backoff_base=0.01, max_deliveries=2))
    good = {f"good-{n}": GOOD_PAYLOADS[n % len(GOOD_PAYLOADS)] for n in range(80)}
    bodies = {delivery: (event, fixture_path(path).read_bytes()) for delivery, (event, path) in good.items()}
    bodies.update({delivery: ("issue_comment", body) for delivery, body in poison_payloads().items()})
    order = list(good)
    for position, delivery in zip(range(5, 80, 14), poison_payloads(), strict=True):  # spread among the good ones
        order.insert(position, delivery)

    with (
        TestClient(create_app(platform, secret=TEST_SECRET, run_worker=False)) as client,
        ThreadPoolExecutor(32) as pool,
    ):
        responses = dict(
            zip(order, pool.map(lambda d: post(client, bodies[d][1], bodies[d][0], d), order), strict=True)
        )

    statuses = {delivery: response.status_code for delivery, response in responses.items()}
    assert statuses == {delivery: 202 for delivery in order}, {
        d: (s, responses[d].text) for d, s in statuses.items() if s != 202
    }
    with store.session() as session:
        rows = {row.delivery_id: row for row in session.query(InboxRecord)}
    assert set(rows) == set(order)
    assert all(rows[delivery].body == bodies[delivery][1] for delivery in order), "a raw body was not kept as sent"
    assert rows["poison-long-action"].action == "x" * 64
    assert rows["poison-nul-action"].action == "crea\ufffdted"
    assert rows["poison-nul-repo"].repo == "acme/wid\ufffdgets"  # never another real name
    assert {rows[d].installation_id for d in order if "installation" in d} == {None}

    asyncio.run(drain(platform))  # the worker takes them all, and each ends
    with store.session() as session:
        finished = {row.delivery_id: row.status for row in session.query(InboxRecord)}
        ran = {run.delivery_id for run in session.query(AgentRun)}
    assert {finished[delivery] for delivery in order} <= {"done", "ignored"}
    # A repository or installation the inbox had to fit to its columns wakes no agent: acting
    # on it as sent fails, and acting on its fitted form could reach another tenant.
    assert not ran & {
        "poison-nul-repo",
        "poison-text-installation",
        "poison-huge-installation",
        "poison-u64-installation",
    }


def test_a_row_the_database_refuses_fails_its_own_delivery_and_no_other(store):
    from bot.inbox import Inbox, InboxStatus, InboxWriter
    from bot.webhooks import Delivery, parse_delivery

    writer = InboxWriter(Inbox(store))
    good = [
        parse_delivery(comment_body("/waooaw help"), event="issue_comment", delivery_id=f"ok-{n}") for n in range(30)
    ]
    # Once the derived columns are fitted no payload makes a row fail; a body no driver can
    # bind stands in for whatever else might, inside a shared INSERT.
    refused = Delivery(delivery_id="refused", event="issue_comment", payload={}, body=object())
    deliveries = [*good[:15], refused, *good[15:], good[0]]

    async def scenario():
        answers = await asyncio.gather(
            *(writer.record(d, InboxStatus.QUEUED) for d in deliveries), return_exceptions=True
        )
        await writer.close()
        return answers

    answers = asyncio.run(scenario())
    assert isinstance(answers[15], Exception)
    assert answers[:15] + answers[16:] == [True] * 30 + [False]  # the repeated id is still a duplicate
    with store.session() as session:
        assert {row.delivery_id for row in session.query(InboxRecord)} == {d.delivery_id for d in good}


def test_a_non_ascii_signature_is_401(client, store):
    body = comment_body("/waooaw help")
    headers = signed_headers(body, "issue_comment", "non-ascii-sig")
    headers["X-Hub-Signature-256"] = "sha256=" + "é" * 64
    response = client.post("/webhooks/github", content=body, headers={k: v.encode() for k, v in headers.items()})
    assert response.status_code == 401
    with store.session() as session:
        assert session.get(InboxRecord, "non-ascii-sig") is None


# ------------------------------------------------------------------ the database out of reach


class PostgresLink:
    """A TCP forwarder between the app and PostgreSQL that the test can cut: what the app sees
    when its database server stops (pooled connections drop, new ones are refused)."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for sock in self._open:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self._target)
            self._open += [client, server]
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, target), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)


@pytest.fixture(params=["sqlite", "pg"])
def vanishing_store(request, tmp_path):
    """A migrated store and a function that takes its database away, as a stopped server or a lost disk would."""

    from agents.store.db import Store

    if request.param == "sqlite":
        folder = tmp_path / "data"
        folder.mkdir()
        store = Store(f"sqlite:///{folder / 'waooaw.db'}")
        store.upgrade()

        def take_away() -> None:
            store.engine.dispose()
            shutil.rmtree(folder)

        yield store, take_away
    else:
        pg_store = request.getfixturevalue("pg_store")
        url = pg_store.engine.url
        link = PostgresLink(url.host, url.port)
        store = Store(url.set(host="127.0.0.1", port=link.port).render_as_string(hide_password=False))
        yield store, link.cut
    store.dispose()


def test_database_out_of_reach_is_503_with_retry_after_and_nothing_claimed(vanishing_store):
    store, take_away = vanishing_store
    platform = make_platform(store)
    body = comment_body("/waooaw help")
    with TestClient(create_app(platform, secret=TEST_SECRET, run_worker=False)) as client:
        assert post(client, body, "issue_comment", "before").status_code == 202
        take_away()
        response = post(client, body, "issue_comment", "after")
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0
    assert "not recorded" in response.json()["error"] and "redeliver" in response.json()["error"]
