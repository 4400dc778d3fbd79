"""The inbox: the durable record of every delivery, deduplicated by X-GitHub-Delivery.

A delivery is acknowledged to GitHub only after its row is committed here; the
worker marks it done, failed or dead. The bus only carries ids of rows in here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError

from agents.context.db import Store
from agents.context.models import InboxRecord, utcnow
from bot.batching import Batcher
from bot.webhooks import Delivery


class InboxStatus(StrEnum):
    QUEUED = "queued"
    IGNORED = "ignored"
    DONE = "done"
    FAILED = "failed"
    DEAD = "dead"


FINISHED = (InboxStatus.DONE, InboxStatus.DEAD, InboxStatus.IGNORED)


class Inbox:
    def __init__(self, store: Store) -> None:
        self.store = store

    def record(self, delivery: Delivery, status: InboxStatus) -> bool:
        """Commit the delivery; False when this delivery id was already recorded."""
        return delivery.delivery_id in self.record_many([(delivery, status)])

    def record_many(self, items: Sequence[tuple[Delivery, InboxStatus]]) -> set[str]:
        """Commit deliveries in one statement; the ids that were new (the rest are duplicates)."""
        now = utcnow()
        rows = {
            delivery.delivery_id: {
                "delivery_id": delivery.delivery_id,
                "event": delivery.event,
                "action": delivery.action,
                "repo": delivery.repo,
                "installation_id": delivery.installation_id,
                "body": delivery.body,
                "status": status.value,
                "attempts": 0,
                "received_at": now,
            }
            for delivery, status in reversed(items)  # the first of two equal ids wins
        }
        # One cached statement executed over many parameter sets: SQLAlchemy batches them
        # into multi-row INSERT ... RETURNING ("insertmanyvalues") without recompiling.
        statement = (
            self.store.insert(InboxRecord)
            .on_conflict_do_nothing(index_elements=["delivery_id"])
            .returning(InboxRecord.delivery_id)
        )
        with self.store.engine.begin() as connection:
            return set(connection.execute(statement, list(rows.values())).scalars())

    def get(self, delivery_id: str) -> InboxRecord | None:
        with self.store.session() as session:
            return session.get(InboxRecord, delivery_id)

    def mark(self, delivery_id: str, status: InboxStatus, *, attempts: int | None = None, error: str | None = None) -> None:
        values: dict[str, object] = {"status": status.value, "error": error}
        if attempts is not None:
            values["attempts"] = attempts
        if status in FINISHED:
            values["finished_at"] = utcnow()
        with self.store.session() as session:
            session.execute(update(InboxRecord).where(InboxRecord.delivery_id == delivery_id).values(**values))

    def unfinished(self, older_than: timedelta = timedelta(0)) -> list[str]:
        """Deliveries recorded but not finished, oldest first: what a restart must re-queue."""
        cutoff = datetime.now(timezone.utc) - older_than
        with self.store.session() as session:
            return list(
                session.scalars(
                    select(InboxRecord.delivery_id)
                    .where(
                        InboxRecord.status.in_([InboxStatus.QUEUED.value, InboxStatus.FAILED.value]),
                        InboxRecord.received_at <= cutoff,
                    )
                    .order_by(InboxRecord.received_at)
                )
            )


class InboxWriter:
    """Intake's way into the inbox: concurrent deliveries share one INSERT and one COMMIT.

    Each request is still answered only after its own row is committed; under load one
    transaction on one thread carries many rows instead of a thread and a commit each.
    """

    def __init__(self, inbox: Inbox, *, max_batch: int = 200) -> None:
        self.inbox = inbox
        self._batcher: Batcher[tuple[Delivery, InboxStatus], bool] = Batcher(self._commit, max_batch=max_batch)

    async def record(self, delivery: Delivery, status: InboxStatus) -> bool:
        """Like `Inbox.record`: True when new, False for a duplicate; raises if the commit failed."""
        return await self._batcher.submit((delivery, status))

    async def close(self) -> None:
        await self._batcher.close()

    async def _commit(self, items: list[tuple[Delivery, InboxStatus]]) -> list[bool]:
        try:
            new = await asyncio.to_thread(self.inbox.record_many, items)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            # The server dropped a pooled connection (restart, failover): nothing was
            # committed, the pool is refreshed, and GitHub gets no redelivery on its own.
            new = await asyncio.to_thread(self.inbox.record_many, items)
        answers = []
        for delivery, _ in items:
            answers.append(delivery.delivery_id in new)
            new.discard(delivery.delivery_id)  # a second copy in the same batch is a duplicate
        return answers
