"""Timer events: `schedule.daily` and `schedule.weekly` for the agents that wake on them.

GitHub sends an App no cron event, so every WAOOAW_SCHEDULE_INTERVAL one process of several (a
schedule lease, bot/schedule.py) records, for each repository where an agent waking on
`schedule.daily` or `schedule.weekly` is hired and active, one delivery of the event `schedule`
with the action `daily` or `weekly` for the current period (the day, or the week from Monday,
in UTC), then puts the new ones on the bus. From there it is a delivery like any other: the
worker routes it to the agents hired there that wake on it.

A delivery's id is derived from its installation, repository, kind and period's start, so the
inbox records it once however many runs or processes try: a run every hour makes one delivery a
day per repository, never two. Each delivery names one repository and its installation, as a
webhook's payload does; an agent woken by it acts on that repository alone.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, Literal

import orjson
import structlog
from sqlalchemy import or_, select

from agents.events import Event
from agents.registry import Registry
from agents.store.db import Store
from agents.store.tables import NO_INSTALLATION, AgentHire, Installation, utcnow
from bot.bus import EventBus
from bot.inbox import Inbox, InboxStatus
from bot.schedule import Lease, Leases, run_every
from bot.settings import Settings
from bot.webhooks import Delivery

log = structlog.get_logger(__name__)

EVENT = "schedule"  # the timer's event name; no GitHub webhook has it
Period = Literal["daily", "weekly"]
PERIODS: tuple[Period, ...] = ("daily", "weekly")
TIMERS_JOB = "agent-timers"  # the schedule's lease


@dataclass(frozen=True)
class Due:
    """One timer delivery: a period of one kind on one repository."""

    installation_id: int | None
    repo: str
    period: Period
    starts: datetime

    @property
    def delivery_id(self) -> str:
        where = hashlib.sha256(f"{self.installation_id or NO_INSTALLATION}:{self.repo}".encode()).hexdigest()[:32]
        return f"schedule-{self.period}-{self.starts:%Y%m%d}-{where}"

    def payload(self) -> dict[str, Any]:
        owner, _, name = self.repo.partition("/")
        shaped: dict[str, Any] = {
            "action": self.period,
            "schedule": {
                "period": self.period,
                "starts_at": self.starts.isoformat(),
                "date": f"{self.starts:%Y-%m-%d}",
                "week": f"{self.starts:%G-W%V}",
            },
            "repository": {"full_name": self.repo, "name": name, "owner": {"login": owner}},
        }
        if self.installation_id is not None:
            shaped["installation"] = {"id": self.installation_id}
        return shaped

    def delivery(self) -> Delivery:
        payload = self.payload()
        return Delivery(delivery_id=self.delivery_id, event=EVENT, payload=payload, body=orjson.dumps(payload))


def period_start(period: Period, now: datetime) -> datetime:
    """The start of the period `now` is in: midnight UTC of the day, or of the week's Monday."""
    day = now.date() - timedelta(days=now.weekday() if period == "weekly" else 0)
    return datetime.combine(day, time(0), tzinfo=now.tzinfo)


def due(store: Store, registry: Registry, now: datetime) -> list[Due]:
    """The timer deliveries of the periods `now` is in: per kind, one for each repository where an agent
    waking on it is hired and active (and its installation is not suspended or deleted)."""
    found: list[Due] = []
    with store.reading() as session:
        for period in PERIODS:
            agents = registry.candidates(Event.from_payload("", EVENT, {"action": period}))
            if not agents:
                continue
            pairs = session.execute(
                select(AgentHire.installation_id, AgentHire.repo)
                .distinct()
                .outerjoin(Installation, Installation.id == AgentHire.installation_id)
                .where(AgentHire.agent.in_([agent.name for agent in agents]))
                .where(or_(Installation.status.is_(None), Installation.status == "active"))
                .order_by(AgentHire.installation_id, AgentHire.repo)
            ).all()
            starts = period_start(period, now)
            for key, repo in pairs:
                installation_id = None if key == NO_INSTALLATION else key
                standings = registry.standings(session, installation_id, repo, agents)
                if any(standing.wakes for standing in standings.values()):
                    found.append(Due(installation_id, repo, period, starts))
    return found


def record_due(store: Store, registry: Registry, now: datetime) -> list[str]:
    """Record the deliveries due at `now`: the ids of those not recorded before."""
    deliveries = [one.delivery() for one in due(store, registry, now)]
    if not deliveries:
        return []
    new = Inbox(store).record_many([(delivery, InboxStatus.QUEUED) for delivery in deliveries])
    return [delivery.delivery_id for delivery in deliveries if delivery.delivery_id in new]


async def wake_timers(store: Store, registry: Registry, bus: EventBus, now: datetime | None = None) -> list[str]:
    """One run: record the deliveries due now and put the new ones on the bus (their ids)."""
    new = await asyncio.to_thread(record_due, store, registry, now or utcnow())
    for delivery_id in new:
        try:
            await bus.publish(delivery_id)
        except Exception:  # recorded: the worker's recovery sweep puts it on the bus later
            log.exception("timers.publish_failed", delivery=delivery_id)
    log.info("timers.run", recorded=len(new))
    return new


def timers_schedule(
    settings: Settings, store: Store, registry: Registry, bus: EventBus, stop: asyncio.Event
) -> Coroutine[Any, Any, None] | None:
    """The timer events every WAOOAW_SCHEDULE_INTERVAL until `stop`; None when it is off (an interval of 0)."""
    interval = settings.schedule_interval
    if interval <= timedelta(0):
        return None
    log.info("timers.schedule", every_s=interval.total_seconds())

    async def job(_lease: Lease) -> None:
        await wake_timers(store, registry, bus)

    return run_every(interval, TIMERS_JOB, job, Leases(store), stop)
