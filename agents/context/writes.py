"""Where a context version is written: the one `append`, whoever writes (agents, the CLI, the API, a CoE job).

An Append is a checked write of a context's next version. Each write, on either backend,
makes the version (linked to its parent), refuses a writer that did not build on the latest
version (StaleContext: never a silent overwrite), records an audit entry (who, what, when,
which job) in the same transaction, and publishes the new version to the latest-version
cache (agents/context/cache.py) before its writer is answered.

Two backends behind one interface, `ContextWriter.append`:
- SessionWriter (here): SQLAlchemy sessions, any database. Agents (agents/base.py), the
  in-process ContextClient (and through it the CLI and the CoE runner) and the API without
  its event-loop pool use it.
- bot/api/loop_writer.py's LoopWriter: the API on PostgreSQL, one statement (APPEND_POSTGRES)
  over psycopg on the event loop, where a thread hand-off would cost more than the write;
  it marks the cache entry before writing and may publish once answered (cache.py says why
  no reader can then miss the version).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn, Protocol

import anyio
import anyio.to_thread
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from agents.context import cache, repository
from agents.context.documents import ContextRef
from agents.context.models import ContextVersion
from agents.context.repository import ContextKey, StaleContext
from agents.store.db import Store
from agents.store.tables import AuditEntry
from agents.tokens import Grant

AUDIT_ACTION = "context.put"


@dataclass(frozen=True)
class Append:
    """A checked write of a context's next version, as every backend takes it."""

    key: ContextKey
    data: dict[str, Any]
    expected: int  # the latest version the writer read; 0: it creates the context
    actor: str  # who writes: a token's actor, or an agent's name
    summary: str = ""
    tags: list[str] = field(default_factory=list)
    job_id: str | None = None
    delivery_id: str | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def by_grant(
        cls, grant: Grant, ref: ContextRef, data: dict[str, Any], *, expected: int, summary: str, tags: list[str]
    ) -> Append:
        return cls(ref.key(grant.installation_id), data, expected, grant.actor, summary, tags, job_id=grant.job_id)

    @property
    def ref(self) -> ContextRef:
        return ContextRef(self.key.repo, self.key.agent, self.key.scope)

    def parameters(self) -> dict[str, Any]:
        """APPEND_POSTGRES's parameters."""
        key = self.key
        return {
            "installation_id": key.installation_id,
            "repo": key.repo,
            "agent": key.agent,
            "scope": key.scope,
            # json.dumps: what the JSON column type itself writes, so both backends store the same text
            "data": json.dumps(self.data),
            "summary": self.summary,
            "tags": json.dumps(self.tags),
            "actor": self.actor,
            "job_id": self.job_id,
            "delivery_id": self.delivery_id,
            "now": self.at,
            "expected": self.expected,
            "target": str(self.ref),
        }

    def row(self, row_id: int, version: int) -> ContextVersion:
        """The row APPEND_POSTGRES wrote, built from what was sent instead of read back."""
        key = self.key
        return ContextVersion(
            id=row_id,
            installation_id=key.installation_id,
            repo=key.repo,
            agent=key.agent,
            scope=key.scope,
            version=version,
            data=self.data,
            summary=self.summary,
            tags=self.tags,
            created_by=self.actor,
            job_id=self.job_id,
            delivery_id=self.delivery_id,
            created_at=self.at,
        )


@dataclass(frozen=True)
class Written:
    """A written version, and what is left to do once its writer has its answer (None: nothing)."""

    row: ContextVersion
    after_answer: Callable[[], Awaitable[None]] | None = None


class ContextWriter(Protocol):
    async def append(self, append: Append) -> Written:
        """Write `append`'s version with its audit entry, published to the cache; StaleContext if the
        latest version is not `append.expected`."""
        ...


class SessionWriter:
    """The backend on SQLAlchemy sessions (any database)."""

    def __init__(self, store: Store, threads: anyio.CapacityLimiter | None = None) -> None:
        self.store = store
        self.threads = threads  # how many writes from the event loop run in threads at once (None: anyio's default)

    async def append(self, append: Append) -> Written:
        return Written(await anyio.to_thread.run_sync(self.write, append, limiter=self.threads))

    def write(self, append: Append, *, then: Callable[[Session, ContextVersion], None] | None = None) -> ContextVersion:
        """The write in one transaction, with what `then` adds to it (a handoff of the new version); published
        to the cache once committed."""
        try:
            with self.store.session() as session:
                row = self._insert(session, append)
                if row is not None and then is not None:
                    then(session, row)
        except IntegrityError as exc:
            raise written_concurrently(append.ref) from exc
        if row is None:
            refuse_stale(self.store, append)
        publish(self.store, [row])
        return row

    @staticmethod
    def _insert(session: Session, append: Append) -> ContextVersion | None:
        try:
            row = repository.save(
                session,
                append.key,
                append.data,
                expected_version=append.expected,
                summary=append.summary,
                tags=append.tags,
                created_by=append.actor,
                job_id=append.job_id,
                delivery_id=append.delivery_id,
            )
        except StaleContext:
            return None
        session.add(audit_entry(append, row.version))
        return row


def audit_entry(append: Append, version: int) -> AuditEntry:
    return AuditEntry(
        actor=append.actor,
        action=AUDIT_ACTION,
        target=f"{append.ref}@{version}"[:512],
        details={"version": version},
        installation_id=append.key.installation_id,
        job_id=append.job_id,
        at=append.at,
    )


def publish(store: Store, rows: list[ContextVersion]) -> None:
    """Versions committed through `store` into its cache, when it has one (cache.watch)."""
    published = cache.watcher(store)
    if published is not None and rows:
        published.publish(rows)


def refuse_stale(store: Store, append: Append) -> NoReturn:
    """Why a write found another latest version than it expected, as the StaleContext to answer."""
    ref = append.ref
    if append.expected == 0:
        raise StaleContext(f"{ref} exists: send If-Match with the version you read (its ETag)")
    with store.reading() as session:
        exists = repository.latest(session, append.key) is not None
    if not exists:
        raise StaleContext(f"{ref} does not exist: send no If-Match to create it")
    raise StaleContext(f"{ref} has changed since version {append.expected}: read it again")


def written_concurrently(ref: ContextRef) -> StaleContext:
    """Another writer took the same version number first (the unique constraint said so)."""
    return StaleContext(f"{ref} was written concurrently: read it again")


# SessionWriter's write in one statement: the version check, the insert linked to its parent, and
# the audit entry. A single statement is atomic on its own, so it needs no transaction. In
# psycopg's parameter style: the loop backend hands it to the driver as it is.
APPEND_POSTGRES = """
    WITH latest AS (
        SELECT id, version FROM context_versions
        WHERE installation_id = %(installation_id)s AND repo = %(repo)s AND agent = %(agent)s AND scope = %(scope)s
        ORDER BY version DESC LIMIT 1
    ), written AS (
        INSERT INTO context_versions
            (installation_id, repo, agent, scope, version, parent_id, data, summary, tags, created_by, job_id,
             delivery_id, created_at)
        SELECT %(installation_id)s, %(repo)s, %(agent)s, %(scope)s, COALESCE((SELECT version FROM latest), 0) + 1,
               (SELECT id FROM latest), CAST(%(data)s AS json), %(summary)s, CAST(%(tags)s AS json), %(actor)s,
               %(job_id)s, %(delivery_id)s, %(now)s
        WHERE COALESCE((SELECT version FROM latest), 0) = %(expected)s
        RETURNING id, version
    ), audited AS (
        INSERT INTO audit_log (actor, action, target, details, installation_id, job_id, at)
        SELECT %(actor)s, 'context.put', %(target)s || '@' || version, json_build_object('version', version),
               %(installation_id)s, %(job_id)s, %(now)s
        FROM written
    )
    SELECT id, version FROM written
    """
