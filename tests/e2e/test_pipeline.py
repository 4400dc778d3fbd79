"""The whole pipeline as a user runs it: signed real payloads → app → bus → worker → agents → fake GitHub."""

from __future__ import annotations

import json
import uuid

import httpx
from sqlalchemy import select

from agents.store.db import Store
from agents.store.tables import AgentRun, InboxRecord
from tests.conftest import fixture_path, load_payload
from tests.e2e.conftest import wait_until
from tests.helpers import signed_headers

HELP_MARKER = "<!-- waooaw:concierge:comment:help:{number} -->"


def comment_payload(text: str, number: int = 1) -> bytes:
    payload = load_payload("issue_comment/created.with-installation.payload.json", comment__body=text)
    payload["issue"]["number"] = number
    return json.dumps(payload).encode()


def deliver(server, body: bytes, event: str = "issue_comment", delivery: str | None = None) -> httpx.Response:
    return httpx.post(
        f"{server.url}/webhooks/github", content=body, headers=signed_headers(body, event, delivery), timeout=10
    )


def statuses(store: Store) -> dict[str, str]:
    with store.session() as session:
        return {
            row.delivery_id: row.status for row in session.execute(select(InboxRecord.delivery_id, InboxRecord.status))
        }


def comments_with(fake, marker: str) -> list[dict]:
    return [comment for comment in fake.comments.values() if marker in (comment["body"] or "")]


def test_a_repeated_delivery_gives_one_comment(fake_github, base_env, processes, tmp_path):
    server = processes("serve", base_env)
    store = Store(base_env["WAOOAW_DATABASE_URL"])
    body = comment_payload("/waooaw help")
    first = deliver(server, body, delivery="dup-1")
    second = deliver(server, body, delivery="dup-1")
    assert (first.status_code, first.json()["status"]) == (202, "queued")
    assert (second.status_code, second.json()["status"]) == (202, "duplicate")
    wait_until(lambda: statuses(store).get("dup-1") == "done", "the delivery to be done")
    help_comments = comments_with(fake_github, HELP_MARKER.format(number=1))
    assert len(help_comments) == 1
    assert "/waooaw status" in help_comments[0]["body"]
    assert [r["content"] for r in fake_github.reactions] == ["eyes"]
    # A new delivery of the same command (GitHub redelivery after a timeout has a new
    # id when replayed by hand) edits the same comment; it never adds a second one.
    deliver(server, body, delivery="dup-2")
    wait_until(lambda: statuses(store).get("dup-2") == "done", "the second delivery to be done")
    assert len(comments_with(fake_github, HELP_MARKER.format(number=1))) == 1
    assert len(fake_github.minted_tokens) == 1, "the installation token is cached, not minted per call"


def test_bad_input_over_http_gets_clear_answers_and_never_a_5xx(fake_github, base_env, processes):
    server = processes("serve", base_env)
    body = comment_payload("/waooaw help")
    headers = signed_headers(body, "issue_comment")
    headers["X-Hub-Signature-256"] = "sha256=" + "0" * 64
    assert httpx.post(f"{server.url}/webhooks/github", content=body, headers=headers).status_code == 401
    truncated = body[: len(body) // 2]
    assert deliver(server, truncated).status_code == 400
    huge = b"{" + b" " * (26 * 1024 * 1024) + b"}"
    response = httpx.post(
        f"{server.url}/webhooks/github", content=huge, headers=signed_headers(huge, "push"), timeout=30
    )
    assert response.status_code == 413
    star = fixture_path("star/created.payload.json").read_bytes()
    ignored = deliver(server, star, event="star")
    assert (ignored.status_code, ignored.json()["status"]) == (202, "ignored")
    assert httpx.get(f"{server.url}/readyz").json() == {"ready": True, "database": True, "bus": True}
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'waooaw_deliveries_rejected_total{code="401"} 1.0' in metrics
    assert 'waooaw_deliveries_total{event="star",status="ignored"} 1.0' in metrics


def test_the_embedded_default_restarted_mid_queue_loses_nothing(fake_github, base_env, processes):
    fake_github.hold("POST", r"/issues/\d+/comments$")  # GitHub creates the comment; the worker never hears back
    server = processes("serve", base_env)
    store = Store(base_env["WAOOAW_DATABASE_URL"])
    ids = [f"mid-{n}" for n in range(1, 7)]
    for number, delivery in enumerate(ids, start=1):
        assert deliver(server, comment_payload("/waooaw help", number), delivery=delivery).json()["status"] == "queued"
    wait_until(lambda: fake_github.held >= 1, "a worker to be in the middle of publishing")
    server.kill()
    unfinished = [d for d, status in statuses(store).items() if status != "done"]
    assert len(unfinished) == len(ids), "the kill should have caught every delivery unfinished"

    fake_github.release()
    processes("serve", base_env)
    wait_until(lambda: all(statuses(store).get(d) == "done" for d in ids), "every delivery to be done after restart")
    for number in range(1, 7):
        assert len(comments_with(fake_github, HELP_MARKER.format(number=number))) == 1, f"issue {number}"


def test_a_worker_killed_between_read_and_ack_is_finished_by_another_with_one_comment(
    fake_github, base_env, processes, pg_store, redis_url
):
    schema_url = pg_store.url  # a fresh, migrated PostgreSQL schema
    stream = f"e2e:{uuid.uuid4().hex}"
    env = {
        **base_env,
        "WAOOAW_DATABASE_URL": schema_url,
        "WAOOAW_REDIS_URL": redis_url,
        "WAOOAW_BUS_STREAM": stream,
        "WAOOAW_BUS_VISIBILITY_TIMEOUT": "2",
    }
    fake_github.hold("POST", r"/issues/\d+/comments$")
    server = processes("serve", env)  # with Redis: intake only
    doomed = processes("worker", env)
    assert deliver(server, comment_payload("/waooaw help", 7), delivery="kill-1").json()["status"] == "queued"
    wait_until(lambda: fake_github.held == 1, "worker 1 to have created the comment")
    doomed.kill()  # after GitHub acted, before the worker recorded it or acked the entry
    fake_github.release()
    assert statuses(pg_store)["kill-1"] == "queued"

    processes("worker", env)
    wait_until(lambda: statuses(pg_store).get("kill-1") == "done", "worker 2 to finish the delivery", timeout=60)
    assert len(comments_with(fake_github, HELP_MARKER.format(number=7))) == 1
    with pg_store.session() as session:
        runs = [
            (r.status, r.worker)
            for r in session.scalars(select(AgentRun).where(AgentRun.delivery_id == "kill-1").order_by(AgentRun.id))
        ]
    assert [status for status, _ in runs] == ["abandoned", "ok"]
    assert runs[0][1] != runs[1][1], "a different worker finished it"
