"""The app's periodic jobs, each run by one process of many at a time.

A job's lease is a row of `schedule_leases` in the database every process shares: a process
takes it when it has lapsed (or is its own) for one interval, then runs the job; a tick of
another process inside that interval finds it held and waits for its next. The holder keeps
it from one tick to the next; a process that dies leaves it to lapse, and another takes the
job over within an interval. The row also keeps when a run last finished (`done_at`), for a
job that goes on from where the previous run stopped, whichever process ran it.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import or_, update

from agents.store.db import Store
from agents.store.tables import ScheduleLease, utcnow

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Lease:
    name: str
    last_done_at: datetime | None  # when a run of the job last finished, in any process; None: never


class Leases:
    def __init__(self, store: Store, holder: str | None = None) -> None:
        self.store = store
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"

    def take(self, name: str, duration: timedelta) -> Lease | None:
        """The job's lease for `duration` from now, or None while another process holds it."""
        now = utcnow()
        with self.store.session() as session:
            session.execute(
                self.store.insert(ScheduleLease)
                .values(name=name, holder=None, expires_at=now)
                .on_conflict_do_nothing(index_elements=["name"])
            )
            taken = session.execute(
                update(ScheduleLease)
                .where(ScheduleLease.name == name)
                .where(or_(ScheduleLease.expires_at <= now, ScheduleLease.holder == self.holder))
                .values(holder=self.holder, expires_at=now + duration)
                .returning(ScheduleLease.done_at)
            ).first()
        if taken is None:
            return None
        done_at = taken.done_at
        if done_at is not None and done_at.tzinfo is None:  # SQLite hands back the UTC wall clock
            done_at = done_at.replace(tzinfo=UTC)
        return Lease(name, done_at)

    def done(self, lease: Lease, at: datetime) -> None:
        """Record that the run under `lease` finished, if the lease is still ours."""
        with self.store.session() as session:
            session.execute(
                update(ScheduleLease)
                .where(ScheduleLease.name == lease.name, ScheduleLease.holder == self.holder)
                .values(done_at=at)
            )


async def run_every(
    interval: timedelta,
    name: str,
    job: Callable[[Lease], Awaitable[object]],
    leases: Leases,
    stop: asyncio.Event,
) -> None:
    """Run `job` now and every `interval` until `stop` is set, whenever this process takes the lease.

    A run that fails is logged and the next tick tries again; `done_at` is set only after a run that
    finished, so the next run starts where the last finished one did.
    """
    while not stop.is_set():
        try:
            lease = await asyncio.to_thread(leases.take, name, interval)
            if lease is not None:
                started = utcnow()
                await job(lease)
                await asyncio.to_thread(leases.done, lease, started)
        except Exception:  # one failed run must not end the schedule
            log.exception("schedule.run_failed", job=name)
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval.total_seconds())
        except TimeoutError:
            pass
