"""ContextClient: the same behaviour and the same errors over HTTP (a live server) and on the store."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import pytest

from agents.context.client import ContextClient, DbContextClient, HttpContextClient
from agents.context.errors import AlreadyClaimed, Forbidden, InvalidRequest, NotFound, RateLimited, Unavailable
from agents.context.repository import StaleContext
from agents.store.db import Store
from agents.tokens import Grant
from bot.api import loop_db
from tests.context_api_support import Clock, api_app, free_port, issue, live_server

REPO = "octo/hello"
MakeClient = Callable[..., ContextClient]


@pytest.fixture(params=["http", "db"])
def make_client(request: pytest.FixtureRequest, store) -> Iterator[MakeClient]:
    """make_client(installation=1, job=None, read_only=False) → a client of that kind."""
    opened: list[ContextClient] = []
    if request.param == "db":

        def make(installation: int = 1, job: str | None = None, read_only: bool = False) -> ContextClient:
            client = DbContextClient(
                store, Grant(installation, job, read_only, actor="test", repo=REPO if job else None)
            )
            opened.append(client)
            return client

        yield make
    else:
        with live_server(api_app(store)) as base:

            def make(installation: int = 1, job: str | None = None, read_only: bool = False) -> ContextClient:
                client = HttpContextClient(
                    base, issue(store, installation, job_id=job, repo=REPO if job else None, read_only=read_only)
                )
                opened.append(client)
                return client

            yield make
    for client in opened:
        client.close()


def test_put_get_and_optimistic_writes(make_client):
    client = make_client()
    assert client.get(REPO, "wowdomain", "job-1") is None
    assert (
        client.put(
            REPO, "wowdomain", "job-1", {"phase": "research"}, expected_version=None, summary="started", tags=["coe"]
        )
        == 1
    )
    with pytest.raises(StaleContext):
        client.put(REPO, "wowdomain", "job-1", {"phase": "lost"}, expected_version=None)
    assert client.put(REPO, "wowdomain", "job-1", {"phase": "draft"}, expected_version=1) == 2
    with pytest.raises(StaleContext):
        client.put(REPO, "wowdomain", "job-1", {"phase": "lost"}, expected_version=1)
    with pytest.raises(StaleContext):
        client.put(REPO, "wowdomain", "job-2", {}, expected_version=3)
    latest = client.get(REPO, "wowdomain", "job-1")
    assert (latest.repo, latest.version, latest.data, latest.summary, latest.tags) == (
        REPO,
        2,
        {"phase": "draft"},
        "",
        [],
    )
    assert client.get(REPO, "wowdomain", "job-1", version=1).data == {"phase": "research"}
    assert client.get(REPO, "wowdomain", "job-1", version=7) is None


def test_update_reads_changes_and_writes_again_when_someone_else_wrote_first(make_client):
    client, rival = make_client(), make_client()
    client.put(REPO, "wowdomain", "job-1", {"count": 0}, expected_version=None, summary="counter")
    calls = []

    def bump(data):
        calls.append(dict(data))
        if len(calls) == 1:  # someone writes between our read and our write
            rival.put(REPO, "wowdomain", "job-1", {"count": 10}, expected_version=1, summary="rival")
        return {"count": data["count"] + 1}

    assert client.update(REPO, "wowdomain", "job-1", bump) == 3
    assert calls == [{"count": 0}, {"count": 10}]
    latest = client.get(REPO, "wowdomain", "job-1")
    assert latest.data == {"count": 11} and latest.summary == "rival"  # kept from the version it built on


def test_lineage_search_and_pages(make_client):
    client = make_client()
    for n in range(5):
        client.put(
            REPO, "wowdomain", f"job-{n}", {"n": n}, expected_version=None, summary=f"onboarding step {n}", tags=["coe"]
        )
    client.put(REPO, "wowdomain", "job-0", {"n": 99}, expected_version=1, summary="onboarding revised")
    lineage = client.lineage(REPO, "wowdomain", "job-0")
    assert [(entry.version, entry.parent) for entry in lineage] == [(1, None), (2, 1)]
    assert lineage[1].summary == "onboarding revised" and lineage[1].created_at is not None
    page = client.search(repo=REPO, tags=["coe"], limit=2)
    assert len(page.items) == 2 and page.next is not None and page.items[0].data == {}
    assert sorted(item.scope for item in client.search_all(repo=REPO, limit=2)) == [f"job-{n}" for n in range(5)]
    assert [item.scope for item in client.search(q="revised").items] == ["job-0"]
    contents = {item.scope: item.data for item in client.search_contents(repo=REPO, limit=2)}
    assert contents == {"job-0": {"n": 99}} | {f"job-{n}": {"n": n} for n in range(1, 5)}  # every page, latest data
    with pytest.raises(NotFound):
        client.lineage(REPO, "wowdomain", "job-9")
    with pytest.raises(InvalidRequest):
        client.search(cursor="not a cursor")


def test_snapshot_and_restore(make_client):
    client = make_client()
    client.put(REPO, "wowdomain", "job-1", {"good": [1.5, "é"]}, expected_version=None)
    client.put(REPO, "wowdomain", "job-1:notes", {"notes": True}, expected_version=None)
    snapshot = client.snapshot(REPO, "job-1")
    assert snapshot.contexts == 2
    client.put(REPO, "wowdomain", "job-1", {"bad": True}, expected_version=1)
    restored = client.restore(snapshot.id)
    assert sorted((r.scope, r.version, r.restores) for r in restored) == [("job-1", 3, 1), ("job-1:notes", 2, 1)]
    assert client.get(REPO, "wowdomain", "job-1").data == {"good": [1.5, "é"]}
    assert client.lineage(REPO, "wowdomain", "job-1")[-1].restores == (snapshot.id, 1)
    with pytest.raises(NotFound):
        make_client(installation=2).restore(snapshot.id)


def test_handoffs_are_claimed_once(make_client):
    sender, receiver = make_client(), make_client()
    sender.put(REPO, "wowvision", "job-1", {"found": 3}, expected_version=None)
    handoff_id = sender.handoff(
        repo=REPO,
        scope="job-1",
        from_agent="wowvision",
        to_agent="wowdomain",
        deliverable={"findings": 3},
        open_questions=["which owner?"],
        provenance={"pr": 7},
    )
    assert [h.id for h in receiver.handoffs(to_agent="wowdomain")] == [handoff_id]
    claimed = receiver.claim(handoff_id)
    assert claimed.package == {
        "deliverable": {"findings": 3},
        "open_questions": ["which owner?"],
        "provenance": {"pr": 7},
    }
    assert claimed.context_version == 1 and claimed.claimed_at is not None
    with pytest.raises(AlreadyClaimed):
        sender.claim(handoff_id)
    assert receiver.handoffs(to_agent="wowdomain") == []
    assert [h.id for h in receiver.handoffs(to_agent="wowdomain", unclaimed=False)] == [handoff_id]
    with pytest.raises(NotFound):
        make_client(installation=2).claim(handoff_id)


def test_refusals_are_the_same_errors(make_client):
    make_client().put(REPO, "wowdomain", "job-1", {}, expected_version=None)
    with pytest.raises(Forbidden):
        make_client(read_only=True).put(REPO, "wowdomain", "job-1", {}, expected_version=1)
    job = make_client(job="job-2")
    with pytest.raises(Forbidden):
        job.get(REPO, "wowdomain", "job-1")
    assert job.put(REPO, "wowdomain", "job-2:phase", {}, expected_version=None) == 1
    assert make_client(installation=2).get(REPO, "wowdomain", "job-1") is None
    with pytest.raises(InvalidRequest):
        make_client().put(REPO, "wowdomain", "job-3", {"x": math.nan}, expected_version=None)
    with pytest.raises(InvalidRequest):
        make_client().put(REPO, "wowdomain", "job-3", {}, expected_version=None, tags=[""])
    with pytest.raises(InvalidRequest):
        make_client().get("not-a-repo", "wowdomain", "job-1")


def test_http_client_waits_out_a_429_as_retry_after_says(store):
    clock = Clock()
    token = issue(store)
    with live_server(api_app(store, clock=clock, WAOOAW_API_RATE_LIMIT=1, WAOOAW_API_RATE_BURST=1)) as base:
        waits: list[float] = []

        def sleep(seconds: float) -> None:  # the server's clock moves instead of this test waiting
            waits.append(seconds)
            clock.advance(seconds)

        with HttpContextClient(base, token, sleep=sleep) as client:
            assert client.put(REPO, "wowdomain", "job-1", {}, expected_version=None) == 1
            assert client.get(REPO, "wowdomain", "job-1").version == 1
            assert waits == [1.0]
        with HttpContextClient(base, token, sleep=lambda _: None, rate_limit_retries=1) as impatient:
            with pytest.raises(RateLimited):
                impatient.get(REPO, "wowdomain", "job-1")


def test_http_client_says_the_store_is_out_of_reach(monkeypatch):
    monkeypatch.setattr(loop_db, "CONNECTION_WAIT_SECONDS", 0.5)  # the server's wait for a connection
    down = Store(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test")  # nothing listens there
    try:
        with live_server(api_app(down)) as base, HttpContextClient(base, f"wao_{'0' * 16}_{'a' * 43}") as client:
            with pytest.raises(Unavailable, match="cannot be reached: try again") as raised:
                client.get(REPO, "wowdomain", "job-1")
    finally:
        down.dispose()
    assert raised.value.status == 503
