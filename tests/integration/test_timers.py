"""Timer events (bot/timers.py): one `schedule` delivery per hired repository and period, never two."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import orjson
from sqlalchemy import select

from agents import hires
from agents.base import WowAgent
from agents.events import Event
from agents.outputs import Output
from agents.registry import Lifecycle, Registry
from agents.store.db import Store
from agents.store.tables import AgentRun, InboxRecord, Installation
from bot.schedule import Leases
from bot.timers import TIMERS_JOB, period_start, record_due, timers_schedule, wake_timers
from tests.helpers import drain, make_platform, make_settings

WEDNESDAY = datetime(2025, 1, 8, 9, 30, tzinfo=UTC)  # the week of Monday 6 January 2025


class Weekly(WowAgent):
    name = "weekly-helper"
    hire_required = True
    wakes_on = ("schedule.weekly",)

    async def execute(self, event: Event) -> list[Output]:
        return []


class Daily(WowAgent):
    name = "daily-helper"
    hire_required = True
    wakes_on = ("schedule.daily",)

    async def execute(self, event: Event) -> list[Output]:
        return []


def registry(store: Store) -> Registry:
    found = Registry(store)
    found.register(Weekly)
    found.register(Daily)
    return found


def hire(store: Store, installation: int | None, repo: str, *agents: str) -> None:
    with store.session() as session:
        hires.apply_config(session, installation, repo, agents, (), {})


def recorded(store: Store) -> list[tuple[str, str | None, str | None, int | None]]:
    with store.reading() as session:
        rows = session.execute(
            select(InboxRecord.event, InboxRecord.action, InboxRecord.repo, InboxRecord.installation_id).order_by(
                InboxRecord.repo, InboxRecord.action
            )
        ).all()
    return [tuple(row) for row in rows]


def test_periods_start_at_midnight_utc_of_the_day_and_of_the_weeks_monday() -> None:
    assert period_start("daily", WEDNESDAY) == datetime(2025, 1, 8, tzinfo=UTC)
    assert period_start("weekly", WEDNESDAY) == datetime(2025, 1, 6, tzinfo=UTC)
    assert period_start("weekly", datetime(2025, 1, 6, tzinfo=UTC)) == datetime(2025, 1, 6, tzinfo=UTC)


def test_one_delivery_per_hired_repository_and_period_none_twice(store: Store) -> None:
    agents = registry(store)
    hire(store, 1, "acme/leads", "weekly-helper", "daily-helper")
    hire(store, 2, "other/repo", "daily-helper")
    with store.session() as session:  # listed but disabled: not hired
        hires.apply_config(session, 3, "acme/fired", (), ("weekly-helper",), {})

    first = record_due(store, agents, WEDNESDAY)
    assert len(first) == 3
    assert recorded(store) == [
        ("schedule", "daily", "acme/leads", 1),
        ("schedule", "weekly", "acme/leads", 1),
        ("schedule", "daily", "other/repo", 2),
    ]
    assert record_due(store, agents, WEDNESDAY + timedelta(hours=1)) == []  # the same period: nothing new
    # the next day: a new daily period, the same week
    next_day = record_due(store, agents, WEDNESDAY + timedelta(days=1))
    assert len(next_day) == 2
    assert all(delivery.startswith("schedule-daily-20250109-") for delivery in next_day)


def test_the_payload_names_its_repository_and_installation_as_githubs_do(store: Store) -> None:
    hire(store, 7, "acme/leads", "weekly-helper")
    (delivery_id,) = record_due(store, registry(store), WEDNESDAY)
    with store.reading() as session:
        row = session.get(InboxRecord, delivery_id)
        assert row is not None
        event = Event.from_payload(row.delivery_id, row.event, orjson.loads(row.body))
    assert (event.kind, event.repo, event.installation_id) == ("schedule.weekly", "acme/leads", 7)
    assert event.payload["schedule"] == {
        "period": "weekly",
        "starts_at": "2025-01-06T00:00:00+00:00",
        "date": "2025-01-06",
        "week": "2025-W02",
    }
    assert event.issue_number is None and not event.repo_public


def test_none_for_a_paused_agent_an_unhired_one_or_a_suspended_installation(store: Store) -> None:
    agents = registry(store)
    hire(store, 1, "acme/paused", "weekly-helper")
    agents.set_state("weekly-helper", Lifecycle.PAUSED, repos=[(1, "acme/paused")])
    hire(store, 2, "acme/suspended", "weekly-helper")
    with store.session() as session:
        session.add(Installation(id=2, account="acme", status="suspended", repos=[]))
    hire(store, 3, "acme/other-agent", "someone-else")
    assert record_due(store, agents, WEDNESDAY) == []
    agents.set_state("weekly-helper", Lifecycle.ACTIVE, repos=[(1, "acme/paused")])
    assert len(record_due(store, agents, WEDNESDAY)) == 1


def test_two_processes_at_once_record_each_delivery_once(pg_store: Store) -> None:
    hire(pg_store, 1, "acme/leads", "weekly-helper", "daily-helper")
    barrier = threading.Barrier(2)
    results: list[list[str]] = []

    def process() -> None:
        agents = registry(pg_store)
        barrier.wait()
        results.append(record_due(pg_store, agents, WEDNESDAY))

    threads = [threading.Thread(target=process) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(len(found) for found in results) in ([0, 2], [1, 1])
    assert len(set(results[0]) | set(results[1])) == 2
    assert len(recorded(pg_store)) == 2


def test_the_schedule_runs_under_a_lease_and_wakes_the_hired_agent(store: Store) -> None:
    hire(store, None, "acme/leads", "weekly-helper")
    platform = make_platform(store, settings=make_settings())
    woken: list[str | None] = []

    class Recording(Weekly):
        async def execute(self, event: Event) -> list[Output]:
            woken.append(event.repo)
            return []

    platform.registry = Registry(store)
    platform.registry.register(Recording)

    async def run() -> None:
        stop = asyncio.Event()
        leases = Leases(store, holder="other-process")
        assert leases.take(TIMERS_JOB, timedelta(hours=1)) is not None  # another process holds the lease
        settings = make_settings(WAOOAW_SCHEDULE_INTERVAL="1h")
        job = timers_schedule(settings, store, platform.registry, platform.bus, stop)
        assert job is not None
        task = asyncio.create_task(job)
        await asyncio.sleep(0)  # the tick finds the lease held
        stop.set()
        await task
        assert recorded(store) == []
        assert await wake_timers(store, platform.registry, platform.bus) != []
        await drain(platform)

    asyncio.run(run())
    assert woken == ["acme/leads"]
    with store.reading() as session:
        assert session.scalars(select(AgentRun.agent)).all() == ["weekly-helper"]


def test_off_with_an_interval_of_zero(store: Store) -> None:
    settings = make_settings(WAOOAW_SCHEDULE_INTERVAL="0")
    assert timers_schedule(settings, store, registry(store), make_platform(store).bus, asyncio.Event()) is None


def test_a_webhook_named_schedule_wakes_nobody(store: Store) -> None:
    """Only the app makes timer events: a delivery of that name from outside is ignored at intake."""
    platform = make_platform(store)
    platform.registry.register(Weekly)
    assert asyncio.run(platform.wanted("schedule", "daily")) is False
