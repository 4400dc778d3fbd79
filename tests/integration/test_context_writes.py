"""The Context API's two ways to PostgreSQL: on the event loop (the app's lifespan opened it:
bot/api/loop_db.py) and in a thread (agents/context/writes.py's SessionWriter, tokens.load). PUTs must write the
same rows, refuse the same way, and turn a concurrent writer's version into 409, not a
500; the gate must see the same token records either way; and both answer 503 while
PostgreSQL cannot be reached."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Text, cast, select, text
from sqlalchemy.orm import aliased

from agents import tokens
from agents.context import repository
from agents.context.models import ContextVersion
from agents.context.repository import ContextKey
from agents.context.writes import SessionWriter
from agents.store.db import Store
from agents.store.tables import AuditEntry, Installation
from bot.api import loop_db
from bot.api.loop_db import LoopDatabase
from bot.api.token_book import TokenBook
from tests.context_api_support import api_app, bearer, expired_token, free_port, issue

URL = "/api/v1/contexts/octo/hello/wowvision/{scope}"
PATHS = ("loop", "thread")


@contextmanager
def client_on(path: str, store, monkeypatch) -> Iterator[TestClient]:
    """A client whose PUTs can only take `path`: the other path's write fails the test."""

    def forbidden(*_args, **_kwargs):
        raise AssertionError(f"a PUT took the other write path than {path!r}")

    app = api_app(store)
    if path == "loop":
        monkeypatch.setattr(SessionWriter, "write", forbidden)
        with TestClient(app) as client:  # the lifespan opens the writer on the client's loop
            yield client
    else:
        monkeypatch.setattr(LoopDatabase, "append", forbidden)
        yield TestClient(app)  # no lifespan: each request on a loop of its own, so the thread path


def put(client: TestClient, token: str, scope: str, data: dict, if_match: str | None = None) -> httpx.Response:
    headers = bearer(token) | ({"If-Match": if_match} if if_match else {})
    return client.put(
        URL.format(scope=scope), json={"data": data, "summary": f"at {data}", "tags": ["t"]}, headers=headers
    )


def written(store, scope: str) -> tuple[list[tuple], list[tuple]]:
    """A scope's versions (each with its parent's version) and audit entries, without ids and times."""
    parent = aliased(ContextVersion)
    with store.reading() as session:
        versions = session.execute(
            select(
                ContextVersion.version,
                cast(ContextVersion.data, Text),
                ContextVersion.summary,
                ContextVersion.tags,
                ContextVersion.created_by,
                ContextVersion.job_id,
                parent.version,
            )
            .outerjoin(parent, ContextVersion.parent_id == parent.id)
            .where(ContextVersion.scope == scope)
            .order_by(ContextVersion.version)
        ).all()
        audit = session.execute(
            select(
                AuditEntry.actor, AuditEntry.action, AuditEntry.target, AuditEntry.details, AuditEntry.installation_id
            )
            .where(AuditEntry.target.like(f"octo/hello/wowvision/{scope}@%"))
            .order_by(AuditEntry.id)
        ).all()
    return [tuple(row) for row in versions], [(a, b, t.replace(scope, "S"), d, i) for a, b, t, d, i in audit]


def test_both_write_paths_leave_the_same_versions_lineage_and_audit(pg_store, monkeypatch):
    token = issue(pg_store)
    for path in PATHS:
        with client_on(path, pg_store, monkeypatch) as client:
            assert put(client, token, path, {"step": 1, "é": [1.5, None]}).json() == {"version": 1}
            second = put(client, token, path, {"step": 2}, if_match='"1"')
            assert second.status_code == 201 and second.headers["etag"] == '"2"'
            latest = client.get(URL.format(scope=path), headers=bearer(token)).json()
            assert latest["version"] == 2 and latest["data"] == {"step": 2} and latest["summary"] == "at {'step': 2}"
        monkeypatch.undo()
    (loop_versions, loop_audit), (thread_versions, thread_audit) = (
        written(pg_store, "loop"),
        written(pg_store, "thread"),
    )
    assert [(row[0], row[-1]) for row in loop_versions] == [(1, None), (2, 1)]  # version 2's parent is version 1
    assert loop_versions == thread_versions
    assert loop_audit == thread_audit and [entry[2] for entry in loop_audit] == [
        "octo/hello/wowvision/S@1",
        "octo/hello/wowvision/S@2",
    ]


@pytest.mark.parametrize("path", PATHS)
def test_both_write_paths_refuse_stale_writes_alike(pg_store, monkeypatch, path):
    token = issue(pg_store)
    with client_on(path, pg_store, monkeypatch) as client:
        assert put(client, token, "s", {"n": 1}).status_code == 201
        again = put(client, token, "s", {"n": 1})
        assert again.status_code == 409 and "exists: send If-Match" in again.json()["error"]
        stale = put(client, token, "s", {"n": 2}, if_match='"5"')
        assert stale.status_code == 409 and "has changed since version 5" in stale.json()["error"]
        missing = put(client, token, "none", {"n": 2}, if_match='"1"')
        assert missing.status_code == 409 and "does not exist" in missing.json()["error"]
    assert [row[0] for row in written(pg_store, "s")[0]] == [1]


@pytest.mark.parametrize("path", PATHS)
def test_a_version_number_taken_by_a_concurrent_writer_is_409_not_500(pg_store, monkeypatch, path):
    """The statement reads version 1 as the latest while another transaction, not yet committed,
    has inserted version 2: the insert waits on the unique index and fails when that commits."""
    token = issue(pg_store)
    key = ContextKey(1, "octo/hello", "wowvision", "race")
    with client_on(path, pg_store, monkeypatch) as client:
        assert put(client, token, "race", {"n": 1}).status_code == 201
        answers: list[httpx.Response] = []
        with pg_store.session() as other:
            repository.save(other, key, {"by": "the other writer"}, expected_version=1)  # flushed, not committed
            writer = threading.Thread(
                target=lambda: answers.append(put(client, token, "race", {"n": 2}, if_match='"1"'))
            )
            writer.start()
            wait_for_a_lock_wait(pg_store)
        writer.join(timeout=30)
    assert len(answers) == 1
    assert answers[0].status_code == 409 and "written concurrently" in answers[0].json()["error"]
    assert [(row[0], row[1]) for row in written(pg_store, "race")[0]] == [
        (1, '{"n": 1}'),
        (2, '{"by": "the other writer"}'),
    ]


def wait_for_a_lock_wait(store) -> None:
    """Until a backend waits on a lock over context_versions (the PUT blocked on the unique index)."""
    deadline = time.monotonic() + 20
    with store.engine.connect() as connection:
        while time.monotonic() < deadline:
            waiting = connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE '%INSERT INTO context_versions%' AND pid <> pg_backend_pid()"
                )
            ).scalar()
            connection.rollback()
            if waiting:
                return
            time.sleep(0.01)  # polling PostgreSQL's own view, bounded by the deadline; not a timing assert
    raise AssertionError("the PUT never waited on the other writer's row")


def test_an_app_started_twice_writes_on_its_loop_both_times(pg_store, monkeypatch):
    """Each lifespan opens a pool of its own (a closed psycopg pool cannot be reopened)."""
    monkeypatch.setattr(SessionWriter, "write", lambda *_: pytest.fail("a PUT took the thread path"))
    token, app = issue(pg_store), api_app(pg_store)
    for version in (1, 2):
        with TestClient(app) as client:
            answer = put(client, token, "twice", {"n": version}, if_match=f'"{version - 1}"' if version > 1 else None)
            assert answer.status_code == 201 and answer.json() == {"version": version}


def test_both_paths_load_the_same_token_records(pg_store):
    """Every state of a token the gate decides on, read on the loop and through a session."""
    with pg_store.session() as session:
        session.add(Installation(id=2, status="suspended", repos=[]))
    active, revoked = issue(pg_store), issue(pg_store)
    with pg_store.session() as session:
        tokens.revoke(session, tokens.token_id(revoked))
    presented = {
        "active": active,
        "revoked": revoked,
        "job, read-only": issue(pg_store, job_id="job-7", repo="octo/hello", read_only=True),
        "expired": expired_token(pg_store),
        "suspended installation": issue(pg_store, installation_id=2),
        "unknown installation": issue(pg_store, installation_id=99),
    }
    idents = {state: tokens.token_id(token) for state, token in presented.items()} | {"unknown": "0" * 16}
    database = LoopDatabase(pg_store)

    async def on_the_loop() -> dict[str, tokens.TokenRecord | None]:
        await database.open()
        try:
            return {state: await database.load_token(ident) for state, ident in idents.items()}
        finally:
            await database.close()

    loaded = asyncio.run(on_the_loop())
    with pg_store.reading() as session:
        assert loaded == {state: tokens.load(session, ident) for state, ident in idents.items()}
    assert loaded["unknown"] is None and loaded["revoked"].revoked and not loaded["active"].revoked
    assert loaded["job, read-only"].grant() == tokens.Grant(
        1, "job-7", True, f"token:{idents['job, read-only']}", "octo/hello"
    )
    assert (
        not loaded["suspended installation"].installation_active and loaded["unknown installation"].installation_active
    )
    for state, token in presented.items():  # what the gate then decides, from either path's record
        _, secret = tokens.parse(token)
        admitted = state in ("active", "job, read-only", "unknown installation")
        try:
            tokens.check(loaded[state], secret, time.time())
        except tokens.InvalidToken:
            assert not admitted, state
        else:
            assert admitted, state


def test_a_served_app_loads_tokens_on_its_loop(pg_store, monkeypatch):
    token = issue(pg_store)

    def forbidden(*_args, **_kwargs):
        raise AssertionError("a token was loaded in a thread while the app's loop could")

    monkeypatch.setattr(TokenBook, "_read", forbidden)
    with TestClient(api_app(pg_store)) as client:
        assert put(client, token, "tokens", {"n": 1}).status_code == 201


@pytest.mark.parametrize("path", PATHS)
def test_postgresql_out_of_reach_is_503_with_retry_after(path, monkeypatch):
    """A request the store cannot serve was not at fault: 503, Retry-After, and what to do, soon."""
    monkeypatch.setattr(loop_db, "CONNECTION_WAIT_SECONDS", 0.5)  # what a loop request waits for a connection
    down = Store(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test")  # nothing listens there
    token = f"wao_{'0' * 16}_{'a' * 43}"
    try:
        with client_on(path, down, monkeypatch) as client:
            answers = [client.get(URL.format(scope="s"), headers=bearer(token)), put(client, token, "s", {"n": 1})]
    finally:
        down.dispose()
    for answer in answers:
        assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
        assert answer.json()["error"].startswith("the context store cannot be reached: try again")
    assert "it may have been made" in answers[1].json()["error"]
