"""The Context API on PostgreSQL and Redis: the latest-version cache, shared rate limits,
revocation, and concurrent writers and readers against a live server.

Each test has its own Redis key prefix (dropped afterwards) and its own schema.
Nothing asserts on elapsed time: clocks are injected, threads meet at barriers.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Iterator

import httpx
import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from agents import tokens
from agents.base import AgentEnv, HandoffPackage, WowAgent
from agents.catalog import default_registry
from agents.context import repository
from agents.context.cache import (
    FILL_LUA,
    FINISH_LUA,
    MARK_FUNCTION,
    PUBLISH_LUA,
    READ_LUA,
    cache_key,
    watch,
    watcher,
    writing_key,
)
from agents.context.models import Handoff
from agents.context.repository import ContextKey, StaleContext
from agents.context.writes import Append, SessionWriter
from agents.events import Event
from agents.store.db import Store
from agents.store.tables import AuditEntry
from bot.api import api_router
from bot.api.revocation import announce_revocation
from bot.api.token_book import TokenBook
from bot.wiring import build_platform
from tests.context_api_support import Clock, api_app, bearer, drop_prefix, free_port, issue, live_server, unique_prefix
from tests.helpers import make_settings

URL = "/api/v1/contexts/octo/hello/wowvision/job-1"
KEY = ContextKey(1, "octo/hello", "wowvision", "job-1")


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    name = unique_prefix()
    yield name
    drop_prefix(redis_url, name)


@pytest.fixture
def app(pg_store: Store, redis_url: str, prefix: str) -> FastAPI:
    return api_app(pg_store, redis_url=redis_url, prefix=prefix)


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def put(client, token, data, if_match=None, url=URL):
    headers = bearer(token) | ({"If-Match": if_match} if if_match else {})
    return client.put(url, json={"data": data}, headers=headers)


# --------------------------------------------------------------------------- the cache


def test_reads_fill_the_cache_and_writes_replace_it(app, pg_store, redis_client, prefix):
    token = issue(pg_store)
    with TestClient(app) as client:
        put(client, token, {"n": 1})
        first = client.get(URL, headers=bearer(token))
        entry = redis_client.hgetall(cache_key(prefix, KEY))
        assert entry[b"v"] == b"1" and entry[b"body"] == first.content  # the exact bytes GET answered
        assert put(client, token, {"n": 2}, '"1"').status_code == 201
        assert redis_client.hget(cache_key(prefix, KEY), "v") == b"2"  # published before the 201
        cached = client.get(URL, headers=bearer(token))
        assert cached.json()["data"] == {"n": 2} and cached.headers["etag"] == '"2"'
        assert client.get(URL, headers=bearer(token) | {"If-None-Match": '"2"'}).status_code == 304
        redis_client.delete(cache_key(prefix, KEY))
        assert client.get(URL, headers=bearer(token)).content == cached.content  # from the database, same bytes


def test_a_version_written_by_an_agent_outside_the_api_is_served_at_once(app, pg_store):
    token = issue(pg_store)
    with TestClient(app) as client:
        put(client, token, {"by": "api"})
        assert client.get(URL, headers=bearer(token)).json()["version"] == 1  # now cached
        # WowAgent.save_context's path, through the same store
        SessionWriter(pg_store).write(Append(KEY, {"by": "agent"}, 1, "wowvision"))
        assert client.get(URL, headers=bearer(token)).json()["data"] == {"by": "agent"}


class Noting(WowAgent):
    name = "noting"

    async def execute(self, event: Event) -> list:
        return []


def test_an_agents_writes_are_audited_and_published_as_the_apis_are(pg_store, redis_url, redis_client, prefix):
    """WowAgent.save_context and handoff_to take the one append: an audit entry each, the cache at once."""
    published = watch(pg_store, redis_url, prefix=prefix)
    agent = Noting(AgentEnv(store=pg_store, registry=default_registry(pg_store)))
    event = Event("delivery-1", "issues", {}, action="opened", repo="octo/hello", installation_id=1)

    async def save_then_hand_off() -> int:
        await agent.wake_up(event)
        agent.context["n"] = 1
        await agent.save_context(event)
        agent.context["n"] = 2
        return await agent.handoff_to("reviewer", HandoffPackage("the draft"), event)

    handoff_id = asyncio.run(save_then_hand_off())
    key = ContextKey(1, "octo/hello", "noting", "repo")
    assert redis_client.hget(cache_key(published.prefix, key), "v") == b"2"
    with pg_store.reading() as session:
        audit = session.execute(
            select(AuditEntry.actor, AuditEntry.action, AuditEntry.target, AuditEntry.installation_id)
            .where(AuditEntry.target.like("octo/hello/noting/%"))
            .order_by(AuditEntry.id)
        ).all()
        second = repository.version(session, key, 2)
        handoff = session.get(Handoff, handoff_id)
    assert [tuple(entry) for entry in audit] == [
        ("noting", "context.put", "octo/hello/noting/repo@1", 1),
        ("noting", "context.put", "octo/hello/noting/repo@2", 1),
    ]
    assert second.delivery_id == "delivery-1" and handoff.context_version_id == second.id


def test_a_restore_reaches_the_cache_at_once(app, pg_store):
    token = issue(pg_store)
    with TestClient(app) as client:
        put(client, token, {"n": 1})
        snapshot = client.post(
            "/api/v1/snapshots", json={"owner": "octo", "repo": "hello", "scope_prefix": "job-1"}, headers=bearer(token)
        ).json()["id"]
        put(client, token, {"n": 2}, '"1"')
        assert client.get(URL, headers=bearer(token)).json()["version"] == 2  # now cached
        assert client.post(f"/api/v1/snapshots/{snapshot}/restore", headers=bearer(token)).status_code == 200
        restored = client.get(URL, headers=bearer(token)).json()
        assert restored["version"] == 3 and restored["data"] == {"n": 1}


def test_every_process_built_with_redis_publishes_its_writes(pg_store, redis_url):
    """A worker process (build_platform) writes; the web process's cache serves it next."""
    installation = random.randrange(10**9, 10**12)  # the default key prefix is shared: keys of our own
    key = ContextKey(installation, "octo/hello", "wowvision", "job-1")
    settings = make_settings(WAOOAW_DATABASE_URL=pg_store.url, WAOOAW_REDIS_URL=redis_url)
    web, worker = build_platform(settings), build_platform(settings)
    try:
        assert watcher(web.store) is not None and watcher(worker.store) is not None
        app = FastAPI()
        app.include_router(api_router(web.settings, web.store))
        token = issue(pg_store, installation_id=installation)
        url = "/api/v1/contexts/octo/hello/wowvision/job-1"
        with TestClient(app) as client:
            assert put(client, token, {"n": 1}, url=url).status_code == 201
            assert client.get(url, headers=bearer(token)).json()["version"] == 1
            SessionWriter(worker.store).write(Append(key, {"n": 2}, 1, "wowvision"))
            assert client.get(url, headers=bearer(token)).json()["data"] == {"n": 2}
    finally:
        keys = redis.Redis.from_url(redis_url)
        keys.delete(cache_key(watcher(web.store).prefix, key))
        keys.close()
        web.store.dispose()
        worker.store.dispose()


def test_a_fill_read_before_a_write_never_lands_over_it_even_after_an_eviction(redis_client, prefix):
    read = redis_client.register_script(READ_LUA)
    fill = redis_client.register_script(FILL_LUA)
    publish = redis_client.register_script(PUBLISH_LUA)
    key = cache_key(prefix, KEY)
    writing = writing_key(key)
    # A reader misses and takes a lease, then reads version 1 from the database...
    assert read(keys=[key, writing], args=["lease-a", 5000]) == 1
    # ...meanwhile a writer commits version 2 and publishes it, and the entry is evicted.
    assert publish(keys=[key], args=[20, 2, b"v2", 60000]) == 1
    redis_client.delete(key)
    # The late fill with version 1 is refused: its lease went with the write.
    assert fill(keys=[key], args=["lease-a", 10, 1, b"v1", 60000]) == 0
    assert redis_client.hget(key, "body") is None
    # A second reader's lease is refused while another reader holds one, and a held lease fills.
    assert read(keys=[key, writing], args=["lease-b", 5000]) == 1
    assert read(keys=[key, writing], args=["lease-c", 5000]) == 0
    assert fill(keys=[key], args=["lease-b", 20, 2, b"v2", 60000]) == 1
    assert read(keys=[key, writing], args=["lease-d", 5000]) == [b"2", b"v2"]
    # Publications only ever move the entry forward.
    assert publish(keys=[key], args=[19, 1, b"v1", 60000]) == 0
    assert publish(keys=[key], args=[21, 3, b"v3", 60000]) == 1
    assert redis_client.hmget(key, "v", "body") == [b"3", b"v3"]


def test_while_a_writer_is_marked_readers_read_the_database_and_its_late_publication_still_moves_forward(
    redis_client, prefix
):
    """The API's writes answer before they publish: their mark must hide every older entry until then."""
    read, fill = redis_client.register_script(READ_LUA), redis_client.register_script(FILL_LUA)
    finish = redis_client.register_script(FINISH_LUA)
    mark = redis_client.register_script(MARK_FUNCTION + "mark_writing(KEYS[1], KEYS[2], ARGV[1], ARGV[2])")
    key = cache_key(prefix, KEY)
    writing = writing_key(key)
    assert read(keys=[key, writing], args=["lease-a", 5000]) == 1  # a reader took a lease before the writers came
    # Two API writers mark the context: the reader's lease goes, so its fill (version 1) is refused.
    mark(keys=[key, writing], args=["w1", 30000])
    mark(keys=[key, writing], args=["w2", 30000])
    assert redis_client.hget(key, "lease") is None
    assert fill(keys=[key], args=["lease-a", 10, 1, b"v1", 60000]) == 0
    # w1 commits version 2 and answers; until it publishes, every reader goes to the database, unfilled.
    assert read(keys=[key, writing], args=["lease-b", 5000]) == 0
    assert redis_client.hget(key, "lease") is None
    # w2 commits version 3, answers and publishes first; w1's publication comes later and is refused.
    assert finish(keys=[key, writing], args=["w2", 12, 3, b"v3", 60000]) == 1
    assert read(keys=[key, writing], args=["lease-c", 5000]) == 0  # w1 is still in flight
    assert finish(keys=[key, writing], args=["w1", 11, 2, b"v2", 60000]) == 0
    assert redis_client.exists(writing) == 0
    assert read(keys=[key, writing], args=["lease-d", 5000]) == [b"3", b"v3"]
    # A writer whose write failed only leaves the set; a lost publication leaves the entry empty (the
    # row id stays, so publications still only move forward), and once the mark expires readers fill
    # it from the database, never from an older entry.
    mark(keys=[key, writing], args=["w3", 30000])
    assert finish(keys=[key, writing], args=["w3"]) == 0
    mark(keys=[key, writing], args=["w4", 30000])
    assert redis_client.hmget(key, "id", "v", "body") == [b"12", None, None]
    redis_client.delete(writing)  # as its expiry would
    assert read(keys=[key, writing], args=["lease-e", 5000]) == 1


@pytest.fixture
def held_publication(monkeypatch):
    """LatestReader.finish holds the publication of version 2 until `release` is set; `done` once it ran."""
    from bot.api.cache import LatestReader

    started, release, done = threading.Event(), threading.Event(), threading.Event()
    finish = LatestReader.finish

    async def held(self, mark, row):
        if row is None or row.version != 2:
            return await finish(self, mark, row)
        started.set()
        await asyncio.to_thread(release.wait, 30)
        await finish(self, mark, row)
        done.set()

    monkeypatch.setattr(LatestReader, "finish", held)
    return started, release, done


def test_a_put_is_answered_before_its_publication_and_meanwhile_readers_get_it_from_the_database(
    app, pg_store, redis_client, prefix, held_publication
):
    started, release, done = held_publication
    token = issue(pg_store)
    entry = cache_key(prefix, KEY)
    writing = writing_key(entry)
    with live_server(app) as base, httpx.Client(base_url=base, timeout=30) as http:
        assert put(http, token, {"n": 1}).status_code == 201
        assert http.get(URL, headers=bearer(token)).json()["version"] == 1
        assert redis_client.hget(entry, "v") == b"1"  # cached
        try:
            answered = put(http, token, {"n": 2}, if_match='"1"')
            assert answered.status_code == 201 and answered.json() == {"version": 2}
            assert started.wait(10)  # its publication is held after the answer
            assert redis_client.hmget(entry, "v", "body") == [None, None] and redis_client.exists(writing) == 1
            read = http.get(URL, headers=bearer(token))
            assert read.status_code == 200 and read.json()["version"] == 2 and read.json()["data"] == {"n": 2}
            assert redis_client.hget(entry, "v") is None  # read from the database, not filled
        finally:
            release.set()
        assert done.wait(10)
        assert redis_client.exists(writing) == 0 and redis_client.hget(entry, "v") == b"2"
        assert http.get(URL, headers=bearer(token)).json()["version"] == 2


def test_a_write_slower_than_the_limit_publishes_before_it_answers(
    app, pg_store, redis_client, prefix, held_publication, monkeypatch
):
    from agents.context import cache as context_cache

    monkeypatch.setattr(context_cache, "PUBLISH_BEFORE_ANSWER_SECONDS", 0.0)  # every write is "slow"
    started, release, _ = held_publication
    token = issue(pg_store)
    answers: list[httpx.Response] = []
    with live_server(app) as base, httpx.Client(base_url=base, timeout=30) as http:
        assert put(http, token, {"n": 1}).status_code == 201
        writer = threading.Thread(target=lambda: answers.append(put(http, token, {"n": 2}, if_match='"1"')))
        writer.start()
        try:
            assert started.wait(10)
            assert answers == []  # not answered while its publication is held
        finally:
            release.set()
        writer.join(timeout=30)
    assert [answer.status_code for answer in answers] == [201]
    assert (
        redis_client.hget(cache_key(prefix, KEY), "v") == b"2"
        and redis_client.exists(writing_key(cache_key(prefix, KEY))) == 0
    )


def test_readers_never_see_a_version_older_than_one_acknowledged_under_concurrent_writers(
    pg_store, redis_url, redis_client, prefix, monkeypatch
):
    """Writers race on one context (through the API and as an agent in process); readers check
    every answer against the newest version acknowledged before they asked; an evictor keeps
    knocking the entry out so that reads fill it again and again, and each database read
    lingers a moment before its fill, which is where a stale value would slip in."""
    from agents.context.service import ContextService

    read = ContextService.read

    def lingering_read(self, *args, **kwargs):
        found = read(self, *args, **kwargs)
        done.wait(random.uniform(0, 0.004))  # widens the window between the read and the fill
        return found

    monkeypatch.setattr(ContextService, "read", lingering_read)
    writes_each, readers, writers_api = 25, 4, 3
    tokens_ = [issue(pg_store) for _ in range(writers_api + readers)]
    unlimited = {"WAOOAW_API_RATE_LIMIT": 1e6, "WAOOAW_API_RATE_BURST": 10**6}  # the limiter is not under test here
    app = api_app(pg_store, redis_url=redis_url, prefix=prefix, **unlimited)
    acknowledged = [0]
    lock = threading.Lock()
    violations: list[str] = []
    done = threading.Event()
    errors: list[BaseException] = []

    def acknowledge(version: int) -> None:
        with lock:
            acknowledged[0] = max(acknowledged[0], version)

    def api_writer(base: str, token: str) -> None:
        with httpx.Client(base_url=base, timeout=30) as http:
            written = 0
            while written < writes_each:
                current = http.get(URL, headers=bearer(token))
                etag = current.headers.get("etag") if current.status_code == 200 else None
                response = put(http, token, {"writer": token[-6:], "n": written}, etag)
                if response.status_code == 201:
                    acknowledge(response.json()["version"])
                    written += 1
                else:
                    assert response.status_code == 409, response.text

    def agent_writer() -> None:  # WowAgent's path: the store directly, no HTTP
        written = 0
        while written < writes_each:
            with pg_store.reading() as session:
                latest = repository.latest(session, KEY)
            try:
                append = Append(KEY, {"agent": written}, latest.version if latest else 0, "wowvision")
                version = SessionWriter(pg_store).write(append).version
            except (StaleContext, IntegrityError):  # another writer won: read again
                continue
            acknowledge(version)
            written += 1

    def reader(base: str, token: str) -> None:
        with httpx.Client(base_url=base, timeout=30) as http:
            while not done.is_set():
                with lock:
                    floor = acknowledged[0]
                response = http.get(URL, headers=bearer(token))
                if response.status_code == 404 and floor == 0:
                    continue
                assert response.status_code == 200, response.text
                if response.json()["version"] < floor:
                    violations.append(
                        f"read version {response.json()['version']} after version {floor} was acknowledged"
                    )

    def evictor() -> None:
        key = cache_key(prefix, KEY)
        while not done.is_set():
            redis_client.delete(key)
            done.wait(0.01)

    def guarded(target, *args) -> None:
        try:
            target(*args)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)

    with live_server(app) as base:
        writers = [threading.Thread(target=guarded, args=(api_writer, base, tokens_[i])) for i in range(writers_api)]
        writers.append(threading.Thread(target=guarded, args=(agent_writer,)))
        others = [
            threading.Thread(target=guarded, args=(reader, base, tokens_[writers_api + i])) for i in range(readers)
        ]
        others.append(threading.Thread(target=guarded, args=(evictor,)))
        for thread in writers + others:
            thread.start()
        for thread in writers:
            thread.join(timeout=300)
        done.set()
        for thread in others:
            thread.join(timeout=60)
    assert not errors, errors
    assert violations == []
    assert acknowledged[0] == writes_each * (writers_api + 1)


def test_two_writers_of_the_same_version_one_wins_one_gets_409_every_time(app, pg_store):
    alice, bob = issue(pg_store), issue(pg_store)
    rounds = 15
    with live_server(app) as base, httpx.Client(base_url=base) as setup:
        assert put(setup, alice, {"round": 0}).status_code == 201
        for round_ in range(1, rounds + 1):
            etag = setup.get(URL, headers=bearer(alice)).headers["etag"]
            start = threading.Barrier(2)
            statuses: dict[str, int] = {}

            def write(name: str, token: str) -> None:
                with httpx.Client(base_url=base) as http:
                    # both threads are joined before the loop moves on: they see this round's values
                    start.wait(timeout=10)  # noqa: B023 - joined within the round
                    statuses[name] = put(http, token, {"round": round_, "by": name}, etag).status_code  # noqa: B023 - as above

            threads = [
                threading.Thread(target=write, args=(name, token)) for name, token in (("alice", alice), ("bob", bob))
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
            assert sorted(statuses.values()) == [201, 409], statuses
        final = setup.get(URL, headers=bearer(alice)).json()
        assert final["version"] == rounds + 1 and final["data"]["round"] == rounds


# --------------------------------------------------------------------------- limits and revocation


def test_rate_limit_is_shared_by_every_process_through_redis(pg_store, redis_url, prefix):
    clock = Clock()
    token, other = issue(pg_store), issue(pg_store)
    settings = {"WAOOAW_API_RATE_LIMIT": 4, "WAOOAW_API_RATE_BURST": 5}
    one = api_app(pg_store, redis_url=redis_url, clock=clock, prefix=prefix, **settings)
    two = api_app(Store(pg_store.url), redis_url=redis_url, clock=clock, prefix=prefix, **settings)
    with TestClient(one) as first, TestClient(two) as second:
        statuses = [client.get(URL, headers=bearer(token)).status_code for client in (first, second) * 3]
        assert statuses == [404] * 5 + [429]
        refused = second.get(URL, headers=bearer(token))
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        assert first.get(URL, headers=bearer(other)).status_code == 404
        clock.advance(0.5)  # 4/s: two requests' worth
        assert [first.get(URL, headers=bearer(token)).status_code for _ in range(3)] == [404, 404, 429]


def test_revocation_reaches_a_process_that_cached_the_token_at_once(app, pg_store, redis_url, prefix):
    token = issue(pg_store)
    with TestClient(app) as client:
        assert client.get(URL, headers=bearer(token)).status_code == 404  # the token's record is now cached
        ident = tokens.token_id(token)
        with pg_store.session() as session:
            tokens.revoke(session, ident)
        announce_revocation(redis_url, ident, prefix=prefix)
        refused = client.get(URL, headers=bearer(token))
        assert refused.status_code == 401 and "revoked" in refused.json()["error"]


def kept_then_revoked(store: Store) -> tuple[TokenBook, str, Clock]:
    """A book that has kept a token's record; the token is then revoked in the store, unannounced."""
    clock = Clock()
    ident = tokens.token_id(issue(store))
    book = TokenBook(store, fresh_seconds=10, stale_seconds=60, clock=clock)
    assert not asyncio.run(book.get(ident)).revoked
    with store.session() as session:
        tokens.revoke(session, ident)
    return book, ident, clock


def test_a_token_in_use_is_refreshed_in_the_background_not_on_a_request(pg_store):
    """Past its fresh period a kept record still answers while the store is asked again aside;
    what the store then says holds from the next request."""
    book, ident, clock = kept_then_revoked(pg_store)

    async def scenario() -> None:
        clock.advance(9)
        assert not (await book.get(ident)).revoked  # fresh: the store is not asked
        clock.advance(6)
        assert not (await book.get(ident)).revoked  # stale: answered from the kept record ...
        await asyncio.gather(*(asyncio.all_tasks() - {asyncio.current_task()}))  # ... while it is reloaded
        assert (await book.get(ident)).revoked

    asyncio.run(scenario())


def test_a_token_idle_past_the_stale_limit_is_loaded_by_its_request(pg_store):
    book, ident, clock = kept_then_revoked(pg_store)
    clock.advance(61)
    assert asyncio.run(book.get(ident)).revoked


def test_without_redis_to_check_revocations_kept_tokens_are_not_trusted(pg_store, prefix):
    token = issue(pg_store)
    unreachable = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens: no revocation marker can be read
    with TestClient(api_app(pg_store, redis_url=unreachable, prefix=prefix)) as client:
        assert client.get(URL, headers=bearer(token)).status_code == 404  # served: the API stays up without Redis
        with pg_store.session() as session:
            tokens.revoke(session, tokens.token_id(token))  # and the announcement cannot reach anyone
        refused = client.get(URL, headers=bearer(token))
        assert refused.status_code == 401 and "revoked" in refused.json()["error"]


def test_expired_token_is_refused_with_redis_too(pg_store, redis_url, prefix):
    token = issue(pg_store)
    clock = Clock()
    with TestClient(api_app(pg_store, redis_url=redis_url, clock=clock, prefix=prefix)) as client:
        assert client.get(URL, headers=bearer(token)).status_code == 404
        clock.advance(3600)
        assert client.get(URL, headers=bearer(token)).status_code == 401


def test_watch_is_once_per_store(pg_store, redis_url, prefix):
    first = watch(pg_store, redis_url, prefix=prefix)
    assert watch(pg_store, redis_url, prefix="ignored:") is first
    other = Store(pg_store.url)
    assert watcher(other) is None
    other.dispose()
