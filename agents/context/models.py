"""Tables of agents' contexts: versions with their lineage, handoffs, snapshots and restores.

They share `Base` with the platform's tables (agents/store/tables.py), so one metadata and one
chain of migrations cover both."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from agents.store.tables import Base, BigId, utcnow


class ContextVersion(Base):
    """One saved version of an agent's context; `parent_id` links the lineage."""

    __tablename__ = "context_versions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    installation_id: Mapped[int] = mapped_column(BigInteger)
    repo: Mapped[str] = mapped_column(String(256))
    agent: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(256))
    version: Mapped[int] = mapped_column(Integer)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("context_versions.id"))
    data: Mapped[dict[str, Any]]
    summary: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_by: Mapped[str | None] = mapped_column(String(128))
    job_id: Mapped[str | None] = mapped_column(String(64))
    delivery_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("installation_id", "repo", "agent", "scope", "version", name="uq_context_version"),
        # Snapshots, restores and handoffs remember ids of rows that may be deleted since: SQLite
        # must never hand such an id to a new row (PostgreSQL never does).
        {"sqlite_autoincrement": True},
    )


class Handoff(Base):
    """A context version plus a package addressed to the next agent; claimed once."""

    __tablename__ = "handoffs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    installation_id: Mapped[int] = mapped_column(BigInteger)
    repo: Mapped[str] = mapped_column(String(256))
    scope: Mapped[str] = mapped_column(String(256))
    from_agent: Mapped[str] = mapped_column(String(64))
    to_agent: Mapped[str] = mapped_column(String(64), index=True)
    context_version_id: Mapped[int | None] = mapped_column(ForeignKey("context_versions.id"))
    package: Mapped[dict[str, Any]]
    job_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(128))


class ContextSnapshot(Base):
    """Every context of a repository (or of the scopes under a prefix: a job) frozen at one moment."""

    __tablename__ = "context_snapshots"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    installation_id: Mapped[int] = mapped_column(BigInteger, index=True)
    repo: Mapped[str] = mapped_column(String(256))
    scope_prefix: Mapped[str] = mapped_column(String(256), default="")
    contexts: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str | None] = mapped_column(String(128))
    job_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ContextSnapshotItem(Base):
    """A copy of one version: a context's head at snapshot time (in full), or one of its ancestors.

    Copies, not references, so that a snapshot restores, and shows its lineage, even
    after the live rows are gone.
    """

    __tablename__ = "context_snapshot_items"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("context_snapshots.id"), index=True)
    source_id: Mapped[int] = mapped_column(BigInteger)  # the context_versions row copied (it may be gone since)
    parent_source_id: Mapped[int | None] = mapped_column(BigInteger)  # the next version back in its lineage
    head: Mapped[bool] = mapped_column(Boolean, default=False)
    agent: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(256))
    version: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict[str, Any] | None]  # heads only: ancestors keep their lineage, not their contents
    summary: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_by: Mapped[str | None] = mapped_column(String(128))
    job_id: Mapped[str | None] = mapped_column(String(64))
    delivery_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    restored_from_snapshot: Mapped[int | None] = mapped_column(BigInteger)  # the original was itself a restore

    __table_args__ = (UniqueConstraint("snapshot_id", "source_id", name="uq_snapshot_item_source"),)


class ContextRestore(Base):
    """Links a version a restore wrote to the snapshotted version whose contents it carries."""

    __tablename__ = "context_restores"

    version_id: Mapped[int] = mapped_column(
        ForeignKey("context_versions.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("context_snapshots.id"))
    source_id: Mapped[int] = mapped_column(BigInteger)
    source_version: Mapped[int] = mapped_column(Integer)


# Search pages through an installation's contexts newest first. (Full-text search on the
# summary has an expression GIN index on PostgreSQL only: see migration 0003.)
Index("ix_context_versions_installation_id", ContextVersion.installation_id, ContextVersion.id)
