"""Reading and writing versioned contexts and handoffs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, exists, select, update
from sqlalchemy.orm import Session, aliased

from agents.context.errors import Conflict
from agents.context.models import ContextVersion, Handoff


@dataclass(frozen=True)
class ContextKey:
    installation_id: int
    repo: str
    agent: str
    scope: str


def latest(session: Session, key: ContextKey) -> ContextVersion | None:
    return session.scalars(
        select(ContextVersion)
        .where(
            ContextVersion.installation_id == key.installation_id,
            ContextVersion.repo == key.repo,
            ContextVersion.agent == key.agent,
            ContextVersion.scope == key.scope,
        )
        .order_by(ContextVersion.version.desc())
        .limit(1)
    ).first()


class StaleContext(Conflict):
    """Someone saved a newer version since this one was read: re-read, redo, save again."""


def save(
    session: Session,
    key: ContextKey,
    data: dict[str, Any],
    *,
    expected_version: int | None = None,
    summary: str = "",
    tags: list[str] | None = None,
    created_by: str | None = None,
    job_id: str | None = None,
    delivery_id: str | None = None,
) -> ContextVersion:
    """Write the next version, linked to the current latest one as its parent.

    With `expected_version` (0: "there was none") the write is optimistic: if the latest
    version is another, StaleContext is raised instead of silently building on a
    context the writer never saw. Two writers racing for the same version number
    collide on the unique constraint; the loser's transaction fails either way.
    """
    parent = latest(session, key)
    current = parent.version if parent else 0
    if expected_version is not None and current != expected_version:
        raise StaleContext(f"{key}: expected version {expected_version}, the latest is {current}")
    row = ContextVersion(
        installation_id=key.installation_id,
        repo=key.repo,
        agent=key.agent,
        scope=key.scope,
        version=(parent.version + 1) if parent else 1,
        parent_id=parent.id if parent else None,
        data=data,
        summary=summary,
        tags=tags or [],
        created_by=created_by,
        job_id=job_id,
        delivery_id=delivery_id,
    )
    session.add(row)
    session.flush()
    return row


def lineage(session: Session, version_id: int) -> list[ContextVersion]:
    """The chain from a version back to its first ancestor, oldest first."""
    chain: list[ContextVersion] = []
    current = session.get(ContextVersion, version_id)
    while current is not None:
        chain.append(current)
        current = session.get(ContextVersion, current.parent_id) if current.parent_id else None
    return list(reversed(chain))


def create_handoff(
    session: Session,
    *,
    installation_id: int,
    repo: str,
    scope: str,
    from_agent: str,
    to_agent: str,
    package: dict[str, Any],
    context_version_id: int | None = None,
    job_id: str | None = None,
) -> Handoff:
    row = Handoff(
        installation_id=installation_id,
        repo=repo,
        scope=scope,
        from_agent=from_agent,
        to_agent=to_agent,
        package=package,
        context_version_id=context_version_id,
        job_id=job_id,
    )
    session.add(row)
    session.flush()
    return row


def version(session: Session, key: ContextKey, number: int) -> ContextVersion | None:
    return session.scalars(
        select(ContextVersion).where(
            ContextVersion.installation_id == key.installation_id,
            ContextVersion.repo == key.repo,
            ContextVersion.agent == key.agent,
            ContextVersion.scope == key.scope,
            ContextVersion.version == number,
        )
    ).first()


def is_head() -> ColumnElement[bool]:
    """A filter on ContextVersion: the row is the latest version of its context."""
    newer = aliased(ContextVersion)
    return ~exists().where(
        newer.installation_id == ContextVersion.installation_id,
        newer.repo == ContextVersion.repo,
        newer.agent == ContextVersion.agent,
        newer.scope == ContextVersion.scope,
        newer.version > ContextVersion.version,
    )


def claim_handoff(session: Session, handoff_id: int, *, claimed_by: str, now: datetime) -> bool:
    """Mark the handoff claimed if nobody has: True for the one caller that did, False for every later one."""
    # an UPDATE's result is a CursorResult (its rowcount); Session.execute is typed for any statement
    claimed = cast(
        CursorResult[Any],
        session.execute(
            update(Handoff)
            .where(Handoff.id == handoff_id, Handoff.claimed_at.is_(None))
            .values(claimed_at=now, claimed_by=claimed_by)
            .execution_options(synchronize_session=False)
        ),
    )
    return claimed.rowcount == 1
