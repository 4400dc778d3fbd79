"""The coordinators' deadlines: a sweep that escalates each task past its deadline, once.

For each open task past its deadline (agents/coordination/assignments.py) the sweep sends, as the
CoE's coordinator, an `escalate` message to the role `<coe>:coordinator` on the task's conversation;
the coordinator wakes on it and opens an issue labelled `needs-human`. The message is keyed by the
task, so a sweep run again, or by two processes, sends it once; the task is then marked escalated.
Workers run the sweep on a schedule lease (bot/schedule.py): one process of many at a time.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import structlog

from agents.coordination import assignments
from agents.coordination.raci import COORDINATOR_ROLE
from agents.events import Event
from agents.outputs import Message
from agents.store.db import Store
from agents.store.tables import TaskAssignment, utcnow
from bot.bus import EventBus
from bot.messages import Messenger
from bot.schedule import Leases, run_every

log = structlog.get_logger(__name__)

ESCALATION_JOB = "coordinators-escalate"  # the schedule's lease
ESCALATION_INTERVAL = timedelta(minutes=1)
EVENT = "task_deadline"  # the name of the sweep's own event: it never reaches the inbox


def _deadline_event(row: TaskAssignment) -> Event:
    """What the escalation is sent on: the task's repository and issue, named by the task."""
    owner, _, name = row.repo.partition("/")
    payload: dict[str, object] = {
        "installation": {"id": row.installation_id},
        "repository": {"full_name": row.repo, "name": name, "owner": {"login": owner}, "private": True},
    }
    if row.issue_number is not None:
        payload["number"] = row.issue_number
    return Event.from_payload(f"deadline-{row.id}", EVENT, payload)


def _escalation(row: TaskAssignment) -> Message:
    body = {
        "task": row.kind,
        "coe": row.coe,
        "assignment": row.id,
        "responsible": row.responsible,
        "accountable": row.accountable,
        "state": row.state,
        "deadline": row.deadline.isoformat(timespec="seconds") if row.deadline is not None else None,
        "issue": row.issue_number,
    }
    return Message("escalate", f"{row.coe}:{COORDINATOR_ROLE}", body, correlation_id=row.correlation_id, key="deadline")


async def escalate_overdue(store: Store, messenger: Messenger, now: datetime | None = None) -> int:
    """Escalate every open task past its deadline at `now`; how many were escalated by this call."""
    at = now or utcnow()

    def read() -> list[TaskAssignment]:
        with store.reading() as session:
            return assignments.overdue(session, at)

    def mark(assignment_id: int) -> bool:
        with store.session() as session:
            return assignments.mark_escalated(session, assignment_id, at)

    escalated = 0
    for row in await asyncio.to_thread(read):
        await messenger.send(f"{row.coe}-coordinator", [_escalation(row)], _deadline_event(row), None)
        if await asyncio.to_thread(mark, row.id):
            escalated += 1
            log.info("coordination.escalated", coe=row.coe, task=row.task_key, deadline=str(row.deadline))
    return escalated


async def escalation_schedule(store: Store, bus: EventBus, stop: asyncio.Event) -> None:
    """The sweep every ESCALATION_INTERVAL, in whichever process holds its lease."""
    messenger = Messenger(store, bus)
    await run_every(
        ESCALATION_INTERVAL, ESCALATION_JOB, lambda lease: escalate_overdue(store, messenger), Leases(store), stop
    )
