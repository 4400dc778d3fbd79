"""A delivery GitHub's rate limit holds back goes back to the bus and is done later: nothing lost,
no tight loop, and the wait never counts towards the dead letters (bot/bus.py Deferred, bot/worker.py).

Time on GitHub's side is a FakeClock; the buses run for real (the local one, and Redis Streams with a
short visibility timeout). Tests wait for conditions with bounded loops, never assert on elapsed time.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable

import pytest
from githubkit.exception import RequestError
from sqlalchemy import select

from agents.base import WowAgent
from agents.catalog import default_registry
from agents.outputs import Comment
from agents.store.db import Store
from agents.store.tables import AgentRun, InboxRecord
from bot.bus import BusMessage, Deferred, EventBus, LocalBus, RedisStreamBus
from bot.github import GitHubClients
from bot.inbox import Inbox, InboxStatus
from bot.publish import GitHubPublisher, PublishError
from bot.ratelimit import GitHubRateLimited, Limiter, LocalLimits
from bot.webhooks import parse_delivery
from bot.wiring import Platform
from bot.worker import _rate_limited
from tests.conftest import load_payload
from tests.fakes.github import FakeGitHub
from tests.helpers import FakeClock, body_of, drain, make_platform, make_settings

WAIT = 15.0  # upper bound for any condition; never an assertion on speed
SECONDARY = {"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}


async def wait_until(condition: Callable[[], Awaitable[bool] | bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while True:
        result = condition()
        if await result if isinstance(result, Awaitable) else result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {WAIT} s waiting for: {what}")
        await asyncio.sleep(0.02)


async def never_dead(message: BusMessage, reason: str) -> None:
    raise AssertionError(f"unexpected dead letter for {message}: {reason}")


# ---------------------------------------------------------------- the buses


def test_the_local_bus_delivers_a_deferred_message_again_uncounted() -> None:
    async def scenario() -> list[BusMessage]:
        bus = LocalBus(max_deliveries=1, backoff_base=0.01, concurrency=1)
        seen: list[BusMessage] = []

        async def handler(message: BusMessage) -> None:
            seen.append(message)
            if len(seen) < 3:
                raise Deferred(0.01, "rate limited")

        stop = asyncio.Event()
        consuming = asyncio.create_task(bus.consume(handler, never_dead, stop))
        await bus.publish("d-later")
        await bus.join()
        stop.set()
        await consuming
        return seen

    assert asyncio.run(scenario()) == [BusMessage("d-later", 1)] * 3  # one delivery allowed, three made


def test_redis_brings_a_deferred_entry_back_uncounted_and_never_buries_it(redis_url: str) -> None:
    stream = f"test:defer:{uuid.uuid4().hex}"

    async def scenario() -> list[BusMessage]:
        bus = RedisStreamBus(
            redis_url,
            stream=stream,
            max_deliveries=1,
            block_ms=100,
            backoff_base=0.01,
            visibility_timeout=0.3,
            in_process_retries=2,
        )
        seen: list[BusMessage] = []
        done = asyncio.Event()

        async def handler(message: BusMessage) -> None:
            seen.append(message)
            if len(seen) < 3:
                # Longer than the visibility timeout, then shorter.
                raise Deferred(60 if len(seen) == 1 else 0.05, "rate limited")
            done.set()

        stop = asyncio.Event()
        consuming = asyncio.create_task(bus.consume(handler, never_dead, stop))
        try:
            await bus.publish("d-later")
            await asyncio.wait_for(done.wait(), WAIT)
            await wait_until(lambda: _empty(bus), "the entry to be acked")
        finally:
            stop.set()
            await asyncio.wait_for(consuming, WAIT)
            await bus._redis.delete(bus.stream, bus.dead_stream, bus.errors_key)
            await bus.close()
        return seen

    # No in-process retries of a deferral, and each delivery is the first.
    assert asyncio.run(scenario()) == [BusMessage("d-later", 1)] * 3


async def _empty(bus: RedisStreamBus) -> bool:
    return await bus.depth() == 0


# ---------------------------------------------------------------- through the worker


class Echo(WowAgent):
    """Answers every comment with one comment of its own."""

    name = "echo"
    wakes_on = ("issue_comment.created",)

    async def execute(self, event):
        return [
            Comment(repo=event.repo, issue_number=event.issue_number, body="echo", key=f"echo-{event.issue_number}")
        ]


def platform(store: Store, fake: FakeGitHub, clock: FakeClock, bus: EventBus, *, budget: float) -> Platform:
    clients = GitHubClients(
        make_settings(GITHUB_TOKEN="ghs_test", GITHUB_API_URL=fake.url),
        max_wait=0.01,
        limiter=Limiter(LocalLimits(), budget=budget, clock=clock),
    )
    built = make_platform(
        store, settings=make_settings(WAOOAW_BUS_MAX_DELIVERIES=1), bus=bus, publisher=GitHubPublisher(store, clients)
    )
    built.registry = default_registry(store)
    built.registry.register(Echo)
    built.github = clients
    return built


def enqueue(store: Store, delivery_id: str, issue: int = 1) -> None:
    payload = load_payload(
        "issue_comment/created.with-installation.payload.json", comment__body="hello", issue__number=issue
    )
    delivery = parse_delivery(body_of(payload), event="issue_comment", delivery_id=delivery_id)
    assert Inbox(store).record(delivery, InboxStatus.QUEUED)


def echo_runs(store: Store, delivery_id: str) -> list[tuple[str, int]]:
    with store.session() as session:
        rows = session.scalars(
            select(AgentRun).where(AgentRun.delivery_id == delivery_id, AgentRun.agent == "echo").order_by(AgentRun.id)
        )
        return [(run.status, run.attempt) for run in rows]


def inbox(store: Store, delivery_id: str) -> tuple[str, str | None]:
    with store.session() as session:
        record = session.get(InboxRecord, delivery_id)
        assert record is not None
        return record.status, record.error


def echoes(fake: FakeGitHub) -> list[dict]:
    return [comment for comment in fake.comments.values() if comment["body"].startswith("echo")]


def test_a_secondary_limit_within_budget_is_waited_out_and_the_comment_published_once(
    sqlite_store: Store, fresh_github: FakeGitHub
) -> None:
    clock = FakeClock()
    fresh_github.fail_next("POST", r"/issues/\d+/comments$", 403, headers={"retry-after": "20"}, body=SECONDARY)
    built = platform(sqlite_store, fresh_github, clock, LocalBus(backoff_base=0.01), budget=30)
    enqueue(sqlite_store, "d-wait")
    asyncio.run(drain(built))
    assert [c.status for c in fresh_github.calls("POST", r"/comments$")] == [403, 201]
    assert sum(clock.slept) == pytest.approx(20)
    assert len(echoes(fresh_github)) == 1
    assert echo_runs(sqlite_store, "d-wait") == [("ok", 1)]


def test_a_call_over_its_budget_goes_back_to_the_bus_and_is_published_on_a_later_delivery(
    sqlite_store: Store, fresh_github: FakeGitHub, redis_url: str
) -> None:
    """GitHub's pause outlasts the visibility timeout: the delivery comes back again and again, and
    while the pause lasts no agent runs on it, nor on another delivery of the same installation."""
    clock = FakeClock()
    fresh_github.fail_next("POST", r"/issues/\d+/comments$", 403, headers={"retry-after": "120"}, body=SECONDARY)
    bus = RedisStreamBus(
        redis_url,
        stream=f"test:defer:{uuid.uuid4().hex}",
        max_deliveries=1,
        block_ms=100,
        backoff_base=0.01,
        visibility_timeout=0.3,
    )
    built = platform(sqlite_store, fresh_github, clock, bus, budget=30)
    enqueue(sqlite_store, "d-later")
    enqueue(sqlite_store, "d-during", issue=2)
    handled: Counter[str] = Counter()

    async def scenario() -> None:
        worker = built.worker()

        async def handle(message: BusMessage) -> None:
            handled[message.delivery_id] += 1
            await worker.handle(message)

        stop = asyncio.Event()
        consuming = asyncio.create_task(bus.consume(handle, worker.bury, stop))
        try:
            await bus.publish("d-later")
            await wait_until(lambda: echo_runs(sqlite_store, "d-later") == [("deferred", 1)], "the limit to be met")
            await bus.publish("d-during")
            await wait_until(lambda: min(handled.values()) >= 3, "both deliveries to come back, twice each")
            # GitHub's 120 s are not over: nothing was tried again, and no agent ran again.
            assert [c.status for c in fresh_github.calls("POST", r"/comments$")] == [403]
            assert echo_runs(sqlite_store, "d-later") == [("deferred", 1)]
            assert echo_runs(sqlite_store, "d-during") == []
            assert inbox(sqlite_store, "d-later")[0] == inbox(sqlite_store, "d-during")[0] == "queued"
            clock.advance(120)
            await wait_until(
                lambda: inbox(sqlite_store, "d-later")[0] == inbox(sqlite_store, "d-during")[0] == "done",
                "both deliveries to be done",
            )
        finally:
            stop.set()
            await asyncio.wait_for(consuming, WAIT)
            await bus._redis.delete(bus.stream, bus.dead_stream, bus.errors_key)
            await bus.close()

    asyncio.run(scenario())
    assert len(echoes(fresh_github)) == 2
    # Every delivery the first: none counted towards the dead letters.
    assert echo_runs(sqlite_store, "d-later") == [("deferred", 1), ("ok", 1)]
    assert echo_runs(sqlite_store, "d-during") == [("ok", 1)]
    assert inbox(sqlite_store, "d-later") == ("done", None)


def test_a_rate_limit_behind_another_error_defers_only_when_nothing_else_failed() -> None:
    first, second = (Comment(repo="o/r", issue_number=1, body="b", key=key) for key in ("a", "b"))
    soon, later = GitHubRateLimited("installation:1", 5), GitHubRateLimited("app:1", 50)
    wrapped = RequestError(later)  # githubkit wraps what a token mint inside a call raised
    wrapped.__cause__ = later
    assert _rate_limited(wrapped) is later
    assert _rate_limited(PublishError([(first, soon), (second, wrapped)])) is later  # the longer wait
    assert _rate_limited(PublishError([(first, soon), (second, RuntimeError("boom"))])) is None
    assert _rate_limited(RuntimeError("boom")) is None
