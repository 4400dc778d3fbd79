"""Sending agents' messages: recorded with their lineage, then delivered like webhook deliveries.

A run's messages are written in one transaction: each message's row in `agent_messages`
(idempotent on its key, so a rerun of the run sends nothing twice), a handoff's record
(`handoffs`, linked to the sender's latest context version) and an inbox row of a delivery
of the event `agent_message` carrying the message. Once committed, each new delivery is
put on the bus. From there a message is a delivery like any other: retried, dead-lettered,
re-queued by the worker's recovery if the bus lost it, and exactly once in effect for its
addressee. agents/messages.py is the protocol; docs/messages.md explains it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from agents.context import repository
from agents.context.repository import ContextKey
from agents.events import Event
from agents.messages import (
    EVENT,
    MAX_HOPS,
    correlation_for,
    delivery_id_for,
    handoff_package,
    hops_for,
    message_key,
    payload,
)
from agents.outputs import Message
from agents.store.db import Store
from agents.store.tables import AgentMessage, utcnow
from bot.bus import EventBus
from bot.inbox import Inbox, InboxStatus, row_of
from bot.webhooks import Delivery

log = structlog.get_logger(__name__)


class MessageRefused(Exception):
    """An agent's messages cannot be sent (nothing of its run is published)."""


@dataclass(frozen=True)
class Sent:
    """One message as recorded: `new` is False when an earlier run of the same sending run sent it."""

    id: int
    key: str
    delivery_id: str
    correlation_id: str
    handoff_id: int | None
    new: bool


def run_keys(messages: Sequence[Message]) -> list[str]:
    """Each message's key within its run: its own, else its place among the run's messages."""
    return [message.key or f"#{index}" for index, message in enumerate(messages)]


def refuse_unsendable(agent: str, messages: Sequence[Message], event: Event) -> None:
    """Refuse before anything of the run is published: a message belongs to its event's installation
    and repository (it never crosses to another tenant), and conversations do not go round for ever."""
    if not messages:
        return
    if event.installation_id is None or event.repo is None:
        raise MessageRefused(
            f"{agent} sent a message on {event.kind}, which names no installation and repository: nothing was published"
        )
    if hops_for(event) > MAX_HOPS:
        raise MessageRefused(
            f"{agent} answered a message that ended a chain of {MAX_HOPS} messages, each caused by the one before: "
            "nothing was published (two agents answering each other for ever?)"
        )
    keys = run_keys(messages)
    if len(set(keys)) != len(keys):
        raise MessageRefused(f"{agent} sent two messages with the same key in one run: nothing was published")


class Messenger:
    def __init__(self, store: Store, bus: EventBus) -> None:
        self.store = store
        self.bus = bus
        self.inbox = Inbox(store)

    async def send(
        self, sender: str, messages: Sequence[Message], event: Event, context: ContextKey | None
    ) -> list[Sent]:
        """Record the messages of `sender`'s run on `event`, then put the new ones on the bus."""
        if not messages:
            return []
        refuse_unsendable(sender, messages, event)
        sent = await asyncio.to_thread(self._record, sender, messages, event, context)
        for one in sent:
            if not one.new:
                continue
            try:
                await self.bus.publish(one.delivery_id)
            except Exception:  # recorded: the worker's recovery sweep puts it on the bus later
                log.exception("messages.publish_failed", delivery=one.delivery_id)
        new = sum(one.new for one in sent)
        log.info("messages.sent", agent=sender, sent=new, sent_before=len(sent) - new)
        return sent

    def _record(self, sender: str, messages: Sequence[Message], event: Event, context: ContextKey | None) -> list[Sent]:
        assert event.installation_id is not None and event.repo is not None  # refuse_unsendable
        installation, repo = event.installation_id, event.repo
        now = utcnow()
        sent: list[Sent] = []
        with self.store.session() as session:
            version = repository.latest(session, context) if context is not None else None
            for message, run_key in zip(messages, run_keys(messages), strict=True):
                key = message_key(installation, event.delivery_id, sender, run_key)
                correlation = message.correlation_id or correlation_for(event)
                delivery_id = delivery_id_for(key)
                row_id = session.execute(
                    self.store.insert(AgentMessage)
                    .values(
                        key=key,
                        installation_id=installation,
                        repo=repo,
                        kind=message.kind,
                        sender=sender,
                        addressee=message.to,
                        correlation_id=correlation,
                        causation=event.delivery_id,
                        delivery_id=delivery_id,
                        hops=hops_for(event),
                        body=message.body,
                        deadline=message.deadline,
                        created_at=now,
                    )
                    .on_conflict_do_nothing(index_elements=["installation_id", "key"])
                    .returning(AgentMessage.id)
                ).scalar()
                if row_id is None:
                    sent.append(_recorded(session, installation, key))
                    continue
                handoff_id = None
                if message.kind == "handoff":
                    handoff_id = repository.create_handoff(
                        session,
                        installation_id=installation,
                        repo=repo,
                        scope=context.scope if context is not None else "repo",
                        from_agent=sender,
                        to_agent=message.to,
                        package=handoff_package(
                            message.body,
                            {"message": row_id, "correlation_id": correlation, "delivery": event.delivery_id},
                        ),
                        context_version_id=version.id if version is not None else None,
                    ).id
                    session.execute(update(AgentMessage).where(AgentMessage.id == row_id).values(handoff_id=handoff_id))
                self._deliver(
                    session,
                    {
                        "id": row_id,
                        "key": key,
                        "kind": message.kind,
                        "from": sender,
                        "to": message.to,
                        "body": message.body,
                        "correlation_id": correlation,
                        "causation": event.delivery_id,
                        "hops": hops_for(event),
                        "deadline": message.deadline.isoformat() if message.deadline is not None else None,
                        "handoff_id": handoff_id,
                    },
                    delivery_id,
                    event,
                )
                sent.append(Sent(row_id, key, delivery_id, correlation, handoff_id, new=True))
        return sent

    def _deliver(self, session: Session, message: dict[str, Any], delivery_id: str, event: Event) -> None:
        """The message's delivery in the inbox, in the transaction that records the message."""
        assert event.installation_id is not None and event.repo is not None
        carried = payload(
            message=message,
            installation_id=event.installation_id,
            repo=event.repo,
            private=not event.repo_public,
            issue_number=event.issue_number,
        )
        delivery = Delivery(delivery_id=delivery_id, event=EVENT, payload=carried, body=orjson.dumps(carried))
        row = row_of(delivery, InboxStatus.QUEUED, utcnow())
        if not session.execute(self.inbox.insert_new().values(**row)).all():
            raise MessageRefused(f"the delivery id {delivery_id} of a new message is taken: nothing was sent")


def _recorded(session: Session, installation: int, key: str) -> Sent:
    row = session.execute(
        select(AgentMessage.id, AgentMessage.delivery_id, AgentMessage.correlation_id, AgentMessage.handoff_id).where(
            AgentMessage.installation_id == installation, AgentMessage.key == key
        )
    ).one()
    return Sent(row.id, key, row.delivery_id, row.correlation_id, row.handoff_id, new=False)
