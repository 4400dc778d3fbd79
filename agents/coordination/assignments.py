"""The coordinators' tasks in the store: the lock that assigns a task once, the load, the deadlines.

`claim` inserts the task's row, unique by (installation, repository, CoE, task key): of two
coordinators or two workers routing one task, one row goes in and the other finds it taken. The run
that inserted it — and its rerun after a crash, known by the delivery id — assigns; any other run
assigns nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from agents.store.db import dialect_insert
from agents.store.tables import TaskAssignment, utcnow

OPEN = ("assigned", "delivered")  # states that count as load and can miss their deadline


@dataclass(frozen=True)
class Task:
    installation_id: int
    repo: str
    coe: str
    key: str  # the task within the CoE and repository: `bug-report:#12`, `release-post:v1.2.0`
    kind: str
    correlation_id: str
    delivery_id: str
    issue_number: int | None = None
    deadline: datetime | None = None


@dataclass(frozen=True)
class Claim:
    won: bool  # this run assigns the task (it inserted the row, or is the rerun of the run that did)
    id: int
    responsible: str
    correlation_id: str


def claim(session: Session, task: Task, responsible: str, accountable: str) -> Claim:
    """The task's row, inserted for `responsible` unless another run assigned it first."""
    now = utcnow()
    inserted = session.execute(
        dialect_insert(session.get_bind().dialect.name, TaskAssignment)
        .values(
            installation_id=task.installation_id,
            repo=task.repo,
            coe=task.coe,
            task_key=task.key,
            kind=task.kind,
            responsible=responsible,
            accountable=accountable,
            state="assigned",
            correlation_id=task.correlation_id,
            delivery_id=task.delivery_id,
            issue_number=task.issue_number,
            deadline=task.deadline,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["installation_id", "repo", "coe", "task_key"])
        .returning(TaskAssignment.id)
    ).scalar()
    if inserted is not None:
        return Claim(True, inserted, responsible, task.correlation_id)
    row = session.execute(
        select(TaskAssignment).where(
            TaskAssignment.installation_id == task.installation_id,
            TaskAssignment.repo == task.repo,
            TaskAssignment.coe == task.coe,
            TaskAssignment.task_key == task.key,
        )
    ).scalar_one()
    return Claim(row.delivery_id == task.delivery_id, row.id, row.responsible, row.correlation_id)


def loads(session: Session, installation_id: int, repo: str, agents: Sequence[str]) -> dict[str, int]:
    """Open tasks assigned to each of `agents` on the repository, whatever the CoE (0 for none)."""
    if not agents:
        return {}
    rows = session.execute(
        select(TaskAssignment.responsible, func.count())
        .where(
            TaskAssignment.installation_id == installation_id,
            TaskAssignment.repo == repo,
            TaskAssignment.responsible.in_(list(agents)),
            TaskAssignment.state.in_(OPEN),
        )
        .group_by(TaskAssignment.responsible)
    )
    found = {name: int(count) for name, count in rows}
    return {name: found.get(name, 0) for name in agents}


def of_conversation(
    session: Session, installation_id: int, repo: str, coe: str, correlation_id: str
) -> list[TaskAssignment]:
    """The CoE's tasks of one conversation on the repository, oldest first."""
    return _tasks(session, installation_id, repo, coe, TaskAssignment.correlation_id == correlation_id)


def _tasks(session: Session, installation_id: int, repo: str, coe: str, *conditions: Any) -> list[TaskAssignment]:
    """The CoE's tasks on one repository of one installation that meet `conditions`, oldest first."""
    return list(
        session.scalars(
            select(TaskAssignment)
            .where(
                TaskAssignment.installation_id == installation_id,
                TaskAssignment.repo == repo,
                TaskAssignment.coe == coe,
                *conditions,
            )
            .order_by(TaskAssignment.id)
        )
    )


def advance(session: Session, assignment_id: int, state: str) -> bool:
    """Move an open task to `delivered` or `done`; False when it was not open (nothing changed)."""
    moved = session.execute(
        update(TaskAssignment)
        .where(TaskAssignment.id == assignment_id, TaskAssignment.state.in_(OPEN))
        .values(state=state, updated_at=utcnow())
    )
    return bool(getattr(moved, "rowcount", 0))


def reopen(session: Session, assignment_id: int) -> bool:
    """Send delivered work back to its Responsible (its Accountable refused it), the deadline unchanged;
    False when the task was not delivered (still assigned, or done: done is final)."""
    moved = session.execute(
        update(TaskAssignment)
        .where(TaskAssignment.id == assignment_id, TaskAssignment.state == "delivered")
        .values(state="assigned", updated_at=utcnow())
    )
    return bool(getattr(moved, "rowcount", 0))


def overdue(session: Session, now: datetime, limit: int = 100) -> list[TaskAssignment]:
    """Open tasks past their deadline and not escalated yet, oldest deadline first."""
    return list(
        session.scalars(
            select(TaskAssignment)
            .where(
                TaskAssignment.state.in_(OPEN),
                TaskAssignment.deadline.is_not(None),
                TaskAssignment.deadline < now,
                TaskAssignment.escalated_at.is_(None),
            )
            .order_by(TaskAssignment.deadline, TaskAssignment.id)
            .limit(limit)
        )
    )


def mark_escalated(session: Session, assignment_id: int, at: datetime) -> bool:
    """Record the escalation once: False when another sweep did it first."""
    marked = session.execute(
        update(TaskAssignment)
        .where(TaskAssignment.id == assignment_id, TaskAssignment.escalated_at.is_(None))
        .values(escalated_at=at, updated_at=at)
    )
    return bool(getattr(marked, "rowcount", 0))


def on_issue(session: Session, installation_id: int, repo: str, coe: str, issue_number: int) -> list[TaskAssignment]:
    """The CoE's open tasks about one issue of the repository."""
    return _tasks(
        session,
        installation_id,
        repo,
        coe,
        TaskAssignment.issue_number == issue_number,
        TaskAssignment.state.in_(OPEN),
    )


def fixed(session: Session, assignment_id: int, pull_number: int) -> bool:
    """A task's issue closed by a merged pull request: the work is delivered, the Accountable signs off."""
    moved = session.execute(
        update(TaskAssignment)
        .where(TaskAssignment.id == assignment_id, TaskAssignment.state.in_(OPEN))
        .values(state="delivered", pull_number=pull_number, updated_at=utcnow())
    )
    return bool(getattr(moved, "rowcount", 0))


def unreleased_fixes(session: Session, installation_id: int, repo: str, release: str) -> list[TaskAssignment]:
    """Tasks of any CoE whose merged pull request no release shipped yet (or `release` did), oldest first."""
    return list(
        session.scalars(
            select(TaskAssignment)
            .where(
                TaskAssignment.installation_id == installation_id,
                TaskAssignment.repo == repo,
                TaskAssignment.pull_number.is_not(None),
                (TaskAssignment.release.is_(None)) | (TaskAssignment.release == release),
            )
            .order_by(TaskAssignment.id)
        )
    )


def released(session: Session, ids: Sequence[int], release: str) -> None:
    if ids:
        session.execute(
            update(TaskAssignment)
            .where(TaskAssignment.id.in_(list(ids)), TaskAssignment.release.is_(None))
            .values(release=release, updated_at=utcnow())
        )
