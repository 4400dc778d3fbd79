"""What agents said to each other, as `waooaw messages list` and the daily report read it.

A message's state is its delivery's, in the inbox, with whether its addressee ran on it:
queued, retrying (failed, to be tried again), dead, handled (an addressee finished its run),
unheard (delivered, but no active agent answers to its addressee) — one record of each fact.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, and_, func, select
from sqlalchemy.orm import Session

from agents.store.tables import AgentMessage, AgentRun, InboxRecord

DEFAULT_LIMIT = 50


@dataclass(frozen=True)
class MessageLine:
    id: int
    created_at: datetime
    repo: str
    kind: str
    sender: str
    addressee: str
    correlation_id: str
    causation: str
    state: str
    body: Any


def state_of(inbox_status: str | None, handled_runs: int) -> str:
    if inbox_status == "done":
        return "handled" if handled_runs else "unheard"
    if inbox_status is None:
        return "unknown"
    return {"failed": "retrying"}.get(inbox_status, inbox_status)


def with_state(query: Select[Any]) -> Select[Any]:
    """`query` over AgentMessage, with the inbox status of each message's delivery and its addressee's finished runs."""
    handled = (
        select(func.count())
        .where(and_(AgentRun.delivery_id == AgentMessage.delivery_id, AgentRun.status == "ok"))
        .correlate(AgentMessage)
        .scalar_subquery()
    )
    return query.add_columns(InboxRecord.status, handled).outerjoin(
        InboxRecord, InboxRecord.delivery_id == AgentMessage.delivery_id
    )


def list_messages(
    session: Session,
    *,
    correlation_id: str | None = None,
    repo: str | None = None,
    installation_id: int | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[MessageLine]:
    """The latest `limit` messages that match, oldest first."""
    query = select(AgentMessage)
    if correlation_id is not None:
        query = query.where(AgentMessage.correlation_id == correlation_id)
    if repo is not None:
        query = query.where(AgentMessage.repo == repo)
    if installation_id is not None:
        query = query.where(AgentMessage.installation_id == installation_id)
    rows = session.execute(with_state(query).order_by(AgentMessage.id.desc()).limit(limit)).all()
    return [
        MessageLine(
            id=m.id,
            created_at=m.created_at if m.created_at.tzinfo else m.created_at.replace(tzinfo=UTC),  # SQLite: naive UTC
            repo=m.repo,
            kind=m.kind,
            sender=m.sender,
            addressee=m.addressee,
            correlation_id=m.correlation_id,
            causation=m.causation,
            state=state_of(status, handled),
            body=m.body,
        )
        for m, status, handled in reversed(rows)
    ]


def summary(body: Any, width: int = 60) -> str:
    """A body on one line, cut to `width` characters."""
    text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
