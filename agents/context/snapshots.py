"""Lineage, snapshots and restores.

A version's lineage runs from it back through its parents. A version written by a
restore carries the contents of a snapshotted version and links to it, so its lineage
runs restored → snapshotted → the snapshotted version's ancestors. A snapshot copies
each context's head in full and its ancestors' lineage (who, when, which job or event),
so that both restore and lineage still work after the live rows are gone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from agents.context import repository
from agents.context.documents import ContextRef, handoff_document, iso
from agents.context.errors import NotFound
from agents.context.models import ContextRestore, ContextSnapshot, ContextSnapshotItem, ContextVersion, Handoff
from agents.context.repository import ContextKey
from agents.tokens import Grant


@dataclass(frozen=True)
class LineageNode:
    """One version in a lineage, whether its row is live or only kept by a snapshot."""

    id: int  # the context_versions id (of the original, for a snapshot's copy)
    version: int
    agent: str
    scope: str
    summary: str
    tags: list[str]
    created_by: str | None
    job_id: str | None
    delivery_id: str | None
    created_at: datetime
    restored_from: int | None  # the snapshot whose version this one carries (the next node in the chain)
    kept_by: int | None  # the snapshot whose copy this is; None for a live row
    parent_id: int | None  # the next version back, for a snapshot's copy

    @classmethod
    def live(cls, row: ContextVersion, restore: ContextRestore | None) -> LineageNode:
        return cls(
            row.id,
            row.version,
            row.agent,
            row.scope,
            row.summary,
            list(row.tags or []),
            row.created_by,
            row.job_id,
            row.delivery_id,
            row.created_at,
            restore.snapshot_id if restore is not None else None,
            None,
            None,
        )

    @classmethod
    def kept(cls, item: ContextSnapshotItem) -> LineageNode:
        return cls(
            item.source_id,
            item.version,
            item.agent,
            item.scope,
            item.summary,
            list(item.tags or []),
            item.created_by,
            item.job_id,
            item.delivery_id,
            item.created_at,
            item.restored_from_snapshot,
            item.snapshot_id,
            item.parent_source_id,
        )


class _Walk:
    """Follows one context's lineage through its live rows, and through a snapshot's copies where they are gone."""

    def __init__(self, session: Session, key: ContextKey) -> None:
        self.session = session
        query = (
            select(ContextVersion)
            .where(
                ContextVersion.installation_id == key.installation_id,
                ContextVersion.repo == key.repo,
                ContextVersion.agent == key.agent,
                ContextVersion.scope == key.scope,
            )
            .options(defer(ContextVersion.data))
        )
        self.rows = {row.id: row for row in session.scalars(query)}
        self.restores = (
            {
                link.version_id: link
                for link in session.scalars(
                    select(ContextRestore).where(ContextRestore.version_id.in_(list(self.rows)))
                )
            }
            if self.rows
            else {}
        )

    def head(self, number: int | None) -> ContextVersion | None:
        candidates = [row for row in self.rows.values() if number is None or row.version == number]
        return max(candidates, key=lambda row: row.version, default=None)

    def chain(self, start: ContextVersion) -> list[LineageNode]:
        """From `start` back to the first version: newest first."""
        nodes: list[LineageNode] = []
        node: LineageNode | None = LineageNode.live(start, self.restores.get(start.id))
        seen: set[tuple[int, int | None]] = set()
        while node is not None and (node.id, node.kept_by) not in seen:
            seen.add((node.id, node.kept_by))
            nodes.append(node)
            node = self._next(node)
        return nodes

    def _next(self, node: LineageNode) -> LineageNode | None:
        if node.kept_by is not None:
            # A snapshot holds the whole chain of what it copied: stay in it (before migration
            # 0008, SQLite may have given a deleted row's id to a newer one).
            return self._kept(node.kept_by, node.parent_id) if node.parent_id is not None else None
        restore = self.restores.get(node.id)
        if restore is not None:
            source = self.rows.get(restore.source_id)
            if source is not None and source.version == restore.source_version:
                return LineageNode.live(source, self.restores.get(source.id))
            return self._kept(restore.snapshot_id, restore.source_id)
        parent = self.rows.get(self.rows[node.id].parent_id or 0)
        return LineageNode.live(parent, self.restores.get(parent.id)) if parent is not None else None

    def _kept(self, snapshot_id: int, source_id: int) -> LineageNode | None:
        item = self.session.scalars(
            select(ContextSnapshotItem).where(
                ContextSnapshotItem.snapshot_id == snapshot_id, ContextSnapshotItem.source_id == source_id
            )
        ).first()
        return LineageNode.kept(item) if item is not None else None


def lineage(session: Session, key: ContextKey, number: int | None = None) -> list[dict[str, Any]]:
    """The lineage of a version (the latest by default) as documents, oldest first."""
    walk = _Walk(session, key)
    start = walk.head(number)
    if start is None:
        raise NotFound(f"no context {key.repo}/{key.agent}/{key.scope}" + (f" version {number}" if number else ""))
    nodes = walk.chain(start)
    handoffs: dict[int, list[dict[str, Any]]] = {}
    live_ids = [node.id for node in nodes if node.kept_by is None]
    versions = {node.id: node.version for node in nodes}
    for handoff in session.scalars(
        select(Handoff).where(Handoff.context_version_id.in_(live_ids)).order_by(Handoff.id)
    ):
        entry = handoff_document(handoff, versions.get(handoff.context_version_id or 0))
        entry.pop("package")
        handoffs.setdefault(handoff.context_version_id or 0, []).append(entry)
    documents = []
    for index, node in enumerate(nodes):
        parent = nodes[index + 1] if index + 1 < len(nodes) else None
        documents.append(
            {
                "version": node.version,
                "parent": parent.version if parent else None,
                "agent": node.agent,
                "created_by": node.created_by,
                "created_at": iso(node.created_at),
                "job": node.job_id,
                "event": node.delivery_id,
                "summary": node.summary,
                "tags": node.tags,
                "restores": (
                    {"snapshot": node.restored_from, "version": parent.version}
                    if node.restored_from is not None and parent is not None
                    else None
                ),
                "kept_by_snapshot": node.kept_by,
                "handoffs": handoffs.get(node.id, []) if node.kept_by is None else [],
            }
        )
    documents.reverse()
    return documents


def take(session: Session, grant: Grant, repo: str, scope_prefix: str) -> ContextSnapshot:
    """Freeze every context of `repo` whose scope starts with `scope_prefix` (that the grant reaches)."""
    query = select(ContextVersion).where(
        ContextVersion.installation_id == grant.installation_id,
        ContextVersion.repo == repo,
        repository.is_head(),
    )
    if scope_prefix:
        query = query.where(ContextVersion.scope.startswith(scope_prefix, autoescape=True))
    heads = [
        row
        for row in session.scalars(query.order_by(ContextVersion.agent, ContextVersion.scope))
        if grant.may_touch(repo, row.scope)
    ]
    snapshot = ContextSnapshot(
        installation_id=grant.installation_id,
        repo=repo,
        scope_prefix=scope_prefix,
        contexts=len(heads),
        created_by=grant.actor,
        job_id=grant.job_id,
    )
    session.add(snapshot)
    session.flush()
    for head in heads:
        key = ContextKey(grant.installation_id, repo, head.agent, head.scope)
        nodes = _Walk(session, key).chain(head)
        for index, node in enumerate(nodes):
            parent = nodes[index + 1] if index + 1 < len(nodes) else None
            session.add(
                ContextSnapshotItem(
                    snapshot_id=snapshot.id,
                    source_id=node.id,
                    parent_source_id=parent.id if parent else None,
                    head=index == 0,
                    agent=node.agent,
                    scope=node.scope,
                    version=node.version,
                    data=head.data if index == 0 else None,
                    summary=node.summary,
                    tags=node.tags,
                    created_by=node.created_by,
                    job_id=node.job_id,
                    delivery_id=node.delivery_id,
                    created_at=node.created_at,
                    restored_from_snapshot=node.restored_from,
                )
            )
    session.flush()
    return snapshot


def find(session: Session, grant: Grant, snapshot_id: int) -> ContextSnapshot:
    snapshot = session.get(ContextSnapshot, snapshot_id)
    if snapshot is None or snapshot.installation_id != grant.installation_id or not grant.may_reach(snapshot.repo):
        raise NotFound(f"no snapshot {snapshot_id}")
    return snapshot


def heads(session: Session, snapshot: ContextSnapshot) -> list[ContextSnapshotItem]:
    return list(
        session.scalars(
            select(ContextSnapshotItem)
            .where(ContextSnapshotItem.snapshot_id == snapshot.id, ContextSnapshotItem.head.is_(True))
            .order_by(ContextSnapshotItem.agent, ContextSnapshotItem.scope)
        )
    )


def restore(
    session: Session, grant: Grant, snapshot: ContextSnapshot
) -> list[tuple[ContextRef, ContextVersion, ContextSnapshotItem]]:
    """Write each snapshotted head back as a new version with the same contents, linked to it."""
    restored = []
    for item in heads(session, snapshot):
        key = ContextKey(snapshot.installation_id, snapshot.repo, item.agent, item.scope)
        current = repository.latest(session, key)
        source = session.get(ContextVersion, item.source_id)
        if source is not None and (source.repo, source.agent, source.scope, source.version) != (
            key.repo,
            key.agent,
            key.scope,
            item.version,
        ):
            source = None  # an id SQLite handed on to another row, before migration 0008 made ids unique
        # Numbers only grow: past the latest live version, and past the snapshotted one
        # in case the versions after it were deleted with the rest.
        row = ContextVersion(
            installation_id=key.installation_id,
            repo=key.repo,
            agent=key.agent,
            scope=key.scope,
            version=max(current.version if current else 0, item.version) + 1,
            parent_id=source.id if source is not None else None,
            data=item.data,
            summary=item.summary,
            tags=list(item.tags or []),
            created_by=grant.actor,
            job_id=grant.job_id,
        )
        session.add(row)
        session.flush()
        session.add(
            ContextRestore(
                version_id=row.id, snapshot_id=snapshot.id, source_id=item.source_id, source_version=item.version
            )
        )
        restored.append((ContextRef(key.repo, key.agent, key.scope), row, item))
    session.flush()
    return restored
