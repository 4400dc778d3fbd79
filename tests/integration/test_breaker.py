"""The LLM circuit breaker: its states in the process and in the real Redis, shared by every
instance on the same Redis, against the fake Anthropic API; its trips in the store and the daily report."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import select

from agents.breaker import CircuitBreaker, MemoryBreakerState, RedisBreakerState, Trip, record_trip, trip_recorder
from agents.llm import BreakerOpen, Budget, LLMClient, LLMUnavailable
from agents.reports import build_daily_report, render_markdown
from agents.store.db import Store
from agents.store.tables import BreakerTrip
from tests.fakes.anthropic import FakeAnthropic

MODEL = "claude-sonnet-4-6"


class Verdict(BaseModel):
    ok: bool


class Clock:
    """Wall-clock seconds every instance of a test reads, moved by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def breaker_key() -> str:
    return f"waooaw:test:breaker:{uuid.uuid4().hex[:8]}"


@pytest.fixture(params=["memory", "redis"])
def new_state(request: pytest.FixtureRequest, breaker_key: str) -> Iterator[Any]:
    """Makes the state of one breaker: each call in a test sees the same one (one process's, or one Redis key)."""
    if request.param == "memory":
        state = MemoryBreakerState()
        yield lambda: state
        return
    url = request.getfixturevalue("redis_url")
    yield lambda: RedisBreakerState.from_url(url, breaker_key)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_the_breaker_opens_after_threshold_failures_in_a_row(new_state):
    async def scenario() -> None:
        clock = Clock()
        breaker = CircuitBreaker(threshold=3, cooldown=30, clock=clock, state=new_state())
        for _ in range(2):
            assert await breaker.admit() is None
            await breaker.failed()
        assert await breaker.admit() is None
        await breaker.succeeded()  # a success resets the count
        for _ in range(3):
            assert await breaker.state() == "closed"
            assert await breaker.admit() is None
            await breaker.failed()
        assert await breaker.state() == "open"
        assert "held 30 s more" in (await breaker.admit() or "")
        await breaker.aclose()

    run(scenario())


def test_half_open_lets_one_trial_through_and_a_failed_trial_opens_it_again(new_state):
    async def scenario() -> None:
        clock = Clock()
        breaker = CircuitBreaker(threshold=1, cooldown=30, clock=clock, state=new_state())
        await breaker.admit()
        await breaker.failed()
        clock.now += 29.9
        assert await breaker.admit() is not None
        clock.now += 0.1
        assert await breaker.state() == "half_open"
        assert await breaker.admit() is None  # the trial
        assert "trial" in (await breaker.admit() or "")  # everyone else waits for it
        await breaker.failed()  # the trial failed: open again, for a full cool-down
        assert await breaker.state() == "open"
        clock.now += 30
        assert await breaker.admit() is None
        await breaker.succeeded()
        assert await breaker.state() == "closed"
        assert await breaker.admit() is None
        await breaker.aclose()

    run(scenario())


def test_an_abandoned_trial_frees_the_slot(new_state):
    async def scenario() -> None:
        clock = Clock()
        breaker = CircuitBreaker(threshold=1, cooldown=1, clock=clock, state=new_state())
        await breaker.failed()
        clock.now += 1
        assert await breaker.admit() is None
        await breaker.abandoned()
        assert await breaker.admit() is None
        await breaker.aclose()

    run(scenario())


def test_each_opening_is_one_trip_reported_once(new_state):
    async def scenario() -> list[Trip]:
        trips: list[Trip] = []

        async def on_trip(trip: Trip) -> None:
            trips.append(trip)

        clock = Clock()
        breaker = CircuitBreaker(threshold=2, cooldown=10, clock=clock, state=new_state(), on_trip=on_trip)
        for _ in range(4):  # opens at the second; later failures of calls under way only hold it open
            await breaker.failed()
        clock.now += 10
        assert await breaker.admit() is None
        await breaker.failed()  # a failed trial: a trip of its own
        await breaker.aclose()
        return trips

    trips = run(scenario())
    assert [(t.kind, t.failures) for t in trips] == [("opened", 2), ("trial_failed", 5)]


def llm(fake: FakeAnthropic, breaker: CircuitBreaker) -> LLMClient:
    return LLMClient("test-key", MODEL, base_url=fake.url, max_retries=0, breaker=breaker)


async def ask(client: LLMClient) -> Verdict:
    return (await client.ask("Judge.", "x", Verdict, max_tokens=100, budget=Budget())).data


def test_a_breaker_one_worker_opens_is_open_for_another_on_the_same_redis(
    fake_anthropic: FakeAnthropic, redis_url: str, breaker_key: str, pg_store: Store
):
    """Two workers, each with its own client and its own Redis connection: the API fails the first
    one's calls, the second's then fail fast without reaching it, and after the cool-down one trial
    from the second closes the breaker for both. The trip is recorded once, in the store."""
    fake = fake_anthropic
    fake.fail(529, times=2)
    clock = Clock()

    def worker() -> LLMClient:
        state = RedisBreakerState.from_url(redis_url, breaker_key)
        return llm(fake, CircuitBreaker(2, 30, clock, state=state, on_trip=trip_recorder(pg_store)))

    async def scenario() -> None:
        first, second = worker(), worker()
        for _ in range(2):
            with pytest.raises(LLMUnavailable):
                await ask(first)
        assert len(fake.messages) == 2
        with pytest.raises(BreakerOpen, match="failed 2 calls in a row"):
            await ask(second)
        assert len(fake.messages) == 2, "an open breaker sends nothing to the API"
        assert await second.breaker.state() == "open"

        clock.now += 30
        fake.answer({"ok": True})
        assert await ask(second) == Verdict(ok=True)  # the trial
        assert await first.breaker.state() == "closed"
        fake.answer({"ok": True})
        assert await ask(first) == Verdict(ok=True)
        await first.aclose()
        await second.aclose()

    run(scenario())
    with pg_store.reading() as session:
        trips = list(session.scalars(select(BreakerTrip)))
    assert [(t.kind, t.failures, t.cooldown_s) for t in trips] == [("opened", 2, 30.0)]


HELD_ELSEWHERE = """
import asyncio, sys
from agents.breaker import CircuitBreaker, RedisBreakerState

async def main() -> None:
    breaker = CircuitBreaker(2, 600, state=RedisBreakerState.from_url(sys.argv[1], sys.argv[2]))
    print(await breaker.state(), await breaker.admit(), sep="\\n")
    await breaker.aclose()

asyncio.run(main())
"""


def test_another_process_on_the_same_redis_sees_the_breaker_open(
    fake_anthropic: FakeAnthropic, redis_url: str, breaker_key: str
):
    fake_anthropic.fail(529, times=2)

    async def trip() -> None:
        client = llm(fake_anthropic, CircuitBreaker(2, 600, state=RedisBreakerState.from_url(redis_url, breaker_key)))
        for _ in range(2):
            with pytest.raises(LLMUnavailable):
                await ask(client)
        await client.aclose()

    run(trip())
    seen = subprocess.run(
        [sys.executable, "-c", HELD_ELSEWHERE, redis_url, breaker_key],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    state, held = seen.stdout.splitlines()
    assert state == "open" and "the Anthropic API failed 2 calls in a row; calls are held" in held


def test_the_daily_report_shows_the_breaker_trips_of_its_day(store: Store):
    day = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    for at in (day, day.replace(hour=16), day.replace(day=22)):  # the day before is not this day's
        record_trip(store, Trip(at, "opened", 5, 60.0))
    report = build_daily_report(store, day.date(), "UTC", now=day.replace(hour=23))
    assert report.health.breaker_trips == 2
    text = render_markdown(report)
    assert "- Circuit-breaker trips: 2" in text
    assert "not recorded" not in text

    quiet = build_daily_report(store, day.date().replace(day=20), "UTC", now=day)
    assert quiet.health.breaker_trips == 0
    assert "- Circuit-breaker trips: 0" in render_markdown(quiet)
