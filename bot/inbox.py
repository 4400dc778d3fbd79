"""The inbox: the durable record of every delivery, deduplicated by X-GitHub-Delivery.

A delivery is acknowledged to GitHub only after its row is committed here; the
worker marks it done, failed or dead. The bus only carries ids of rows in here.

A signed delivery is never refused for what its payload says: the raw body is kept
as sent, and the columns derived from it (action, repo, installation) are made fit
for their types, so no payload can make its row, or the rows committed with it, fail.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import structlog
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ReturningInsert

from agents.store.db import Store
from agents.store.tables import InboxRecord, declared_length, utcnow
from bot.batching import Batcher
from bot.webhooks import Delivery

log = structlog.get_logger(__name__)

# The database down, restarting, out of connections or locked: every row would fail alike.
OUT_OF_REACH = (OperationalError, PoolTimeout)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_ACTION_LENGTH = declared_length(InboxRecord.__table__.c.action)
_REPO_LENGTH = declared_length(InboxRecord.__table__.c.repo)
_BIGINT_END = 2**63


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
            delivery.delivery_id: row_of(delivery, status, now)
            for delivery, status in reversed(items)  # the first of two equal ids wins
        }
        # One cached statement executed over many parameter sets: SQLAlchemy batches them
        # into multi-row INSERT ... RETURNING ("insertmanyvalues") without recompiling.
        with self.store.engine.begin() as connection:
            return {row.delivery_id for row in connection.execute(self.insert_new(), list(rows.values()))}

    def insert_new(self) -> ReturningInsert[tuple[str]]:
        """INSERT of rows (`row_of`) that skips an id already recorded, returning the ids it inserted."""
        return (
            self.store.insert(InboxRecord)
            .on_conflict_do_nothing(index_elements=["delivery_id"])
            .returning(InboxRecord.delivery_id)
        )

    def get(self, delivery_id: str) -> InboxRecord | None:
        with self.store.session() as session:
            return session.get(InboxRecord, delivery_id)

    def known(self, delivery_ids: Iterable[str], *, chunk: int = 500) -> set[str]:
        """Those of the ids that are recorded here, whatever their status."""
        ids, found = sorted(set(delivery_ids)), set[str]()
        with self.store.reading() as session:
            for start in range(0, len(ids), chunk):
                wanted = InboxRecord.delivery_id.in_(ids[start : start + chunk])
                found.update(session.scalars(select(InboxRecord.delivery_id).where(wanted)))
        return found

    def mark(
        self,
        delivery_id: str,
        status: InboxStatus,
        *,
        attempts: int | None = None,
        error: str | None = None,
        session: Session | None = None,
    ) -> None:
        """Set the delivery's status: in `session`'s transaction when given, else in one of its own."""
        if session is None:
            with self.store.session() as own:
                return self.mark(delivery_id, status, attempts=attempts, error=error, session=own)
        values: dict[str, object] = {"status": status.value, "error": error}
        if attempts is not None:
            values["attempts"] = attempts
        if status in FINISHED:
            values["finished_at"] = utcnow()
        session.execute(update(InboxRecord).where(InboxRecord.delivery_id == delivery_id).values(**values))

    def unfinished(self, older_than: timedelta = timedelta(0)) -> list[str]:
        """Deliveries recorded but not finished, oldest first: what a restart must re-queue."""
        cutoff = datetime.now(UTC) - older_than
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
    A shared INSERT that fails for any reason but the database being out of reach is
    tried again row by row, so one delivery can never fail another.
    """

    def __init__(self, inbox: Inbox, *, max_batch: int = 200) -> None:
        self.inbox = inbox
        self._batcher: Batcher[tuple[Delivery, InboxStatus], bool] = Batcher(self._commit, max_batch=max_batch)

    async def record(self, delivery: Delivery, status: InboxStatus) -> bool:
        """Like `Inbox.record`: True when new, False for a duplicate; raises if the commit failed."""
        return await self._batcher.submit((delivery, status))

    async def close(self) -> None:
        await self._batcher.close()

    async def _commit(self, items: list[tuple[Delivery, InboxStatus]]) -> list[bool | Exception]:
        try:
            new = await asyncio.to_thread(self._insert, items)
        except OUT_OF_REACH:
            raise
        except Exception as exc:  # whatever one row did, it must not fail the others
            if len(items) == 1:
                raise
            log.warning("inbox.batch_refused", rows=len(items), error=repr(exc)[:500])
            return await asyncio.to_thread(self._insert_each, items)
        answers: list[bool | Exception] = []
        for delivery, _ in items:
            answers.append(delivery.delivery_id in new)
            new.discard(delivery.delivery_id)  # a second copy in the same batch is a duplicate
        return answers

    def _insert(self, items: list[tuple[Delivery, InboxStatus]]) -> set[str]:
        try:
            return self.inbox.record_many(items)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            # The server dropped a pooled connection (restart, failover): nothing was
            # committed, the pool is refreshed, and GitHub gets no redelivery on its own.
            return self.inbox.record_many(items)

    def _insert_each(self, items: list[tuple[Delivery, InboxStatus]]) -> list[bool | Exception]:
        """Each row in a transaction of its own: the answer for each, or what failed it alone."""
        answers: list[bool | Exception] = []
        for item in items:
            try:
                answers.append(item[0].delivery_id in self._insert([item]))
            except Exception as exc:  # noqa: BLE001 - that delivery's caller raises it
                answers.append(exc)
        return answers


def row_of(delivery: Delivery, status: InboxStatus, now: datetime) -> dict[str, object]:
    """A delivery's inbox row, its columns made fit from its payload."""
    return {
        "delivery_id": delivery.delivery_id,
        "event": delivery.event,
        "action": _fitted(delivery.action, _ACTION_LENGTH),
        "repo": _fitted(delivery.repo, _REPO_LENGTH),
        "installation_id": _fitted_id(delivery.installation_id),
        "body": delivery.body,
        "status": status.value,
        "attempts": 0,
        "received_at": now,
    }


def _fitted(text: str | None, length: int) -> str | None:
    """Text from a payload as its column takes it: control characters (PostgreSQL refuses NUL)
    replaced, not removed, so a cleaned name never becomes another real one; cut to the column's length."""
    return None if text is None else _CONTROL.sub("\ufffd", text)[:length]


def _fitted_id(installation_id: int | None) -> int | None:
    """An installation id as its BIGINT column takes it; any other number belongs to no installation."""
    return installation_id if installation_id is not None and 0 < installation_id < _BIGINT_END else None
