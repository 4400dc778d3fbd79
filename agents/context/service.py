"""The Context API's operations, on the store, for a grant (an installation, maybe a repository and a job,
maybe read-only).

The HTTP API (bot/api) and the in-process ContextClient both go through here, so
access rules, optimistic concurrency and the audit log are the same either way. Every
write records an audit entry (who, what, when, which job) in its own transaction; a
context version is written by agents/context/writes.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from agents.context import repository, snapshots, writes
from agents.context.documents import (
    AGENT_MAX,
    SCOPE_MAX,
    ContextRef,
    check_contents,
    check_json,
    check_segment,
    handoff_document,
    iso,
    split_repo,
    version_document,
)
from agents.context.errors import AlreadyClaimed, Conflict, Forbidden, InvalidRequest, NotFound
from agents.context.models import ContextVersion, Handoff
from agents.context.repository import StaleContext
from agents.context.search import DEFAULT_LIMIT, MAX_LIMIT, SearchQuery, find
from agents.context.writes import Append, SessionWriter
from agents.store.db import Store
from agents.store.tables import AuditEntry
from agents.tokens import Grant


class ContextService:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.writer = SessionWriter(store)

    # ------------------------------------------------------------------ access

    @staticmethod
    def check_read(grant: Grant, ref: ContextRef) -> None:
        """Another repository's contexts do not exist for a token bound to one (as another
        installation's do not); another job's are refused."""
        if not grant.may_reach(ref.repo):
            raise NotFound(f"no context {ref}")
        if not grant.may_touch(ref.repo, ref.scope):
            raise Forbidden(grant.reach())

    @staticmethod
    def check_write(grant: Grant, ref: ContextRef) -> None:
        if grant.read_only:
            raise Forbidden("this token is read-only")
        if not grant.may_touch(ref.repo, ref.scope):
            raise Forbidden(grant.reach())

    # ------------------------------------------------------------------ contexts

    def get(self, grant: Grant, ref: ContextRef, version: int | None = None) -> dict[str, Any]:
        return self.read(grant, ref, version)[1]

    def read(self, grant: Grant, ref: ContextRef, version: int | None = None) -> tuple[int, dict[str, Any]]:
        """(row id, document) of a version, the latest by default; the row id orders cache fills."""
        self.check_read(grant, ref)
        key = ref.key(grant.installation_id)
        with self.store.reading() as session:
            row = repository.latest(session, key) if version is None else repository.version(session, key, version)
            if row is None:
                raise NotFound(f"no context {ref}" + (f" version {version}" if version is not None else ""))
            return row.id, version_document(row)

    def put(
        self,
        grant: Grant,
        ref: ContextRef,
        data: dict[str, Any],
        *,
        if_match: int | None,
        summary: str = "",
        tags: list[str] | tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """Write the next version. `if_match` None creates the context and fails if it exists;
        otherwise it must be the latest version (StaleContext if not: never a silent overwrite)."""
        append = self.prepare_put(grant, ref, data, if_match=if_match, summary=summary, tags=tags)
        return version_document(self.writer.write(append))

    def prepare_put(
        self,
        grant: Grant,
        ref: ContextRef,
        data: dict[str, Any],
        *,
        if_match: int | None,
        summary: str = "",
        tags: list[str] | tuple[str, ...] = (),
    ) -> Append:
        """The write `put` makes, checked (access, contents, If-Match) and ready for either backend."""
        self.check_write(grant, ref)
        check_contents(data, summary, tags)
        if if_match is not None and if_match < 1:
            raise StaleContext(f"{ref} has no version {if_match}: send no If-Match to create it")
        expected = if_match if if_match is not None else 0
        return Append.by_grant(grant, ref, data, expected=expected, summary=summary, tags=list(tags))

    def lineage(self, grant: Grant, ref: ContextRef, version: int | None = None) -> list[dict[str, Any]]:
        self.check_read(grant, ref)
        with self.store.reading() as session:
            return snapshots.lineage(session, ref.key(grant.installation_id), version)

    def search(self, grant: Grant, query: SearchQuery) -> dict[str, Any]:
        with self.store.reading() as session:
            rows, cursor = find(session, grant, query)
            return {"items": [version_document(row, with_data=False) for row in rows], "next": cursor}

    # ------------------------------------------------------------------ snapshots

    def snapshot(self, grant: Grant, repo: str, scope_prefix: str = "") -> dict[str, Any]:
        split_repo(repo)
        if scope_prefix:
            check_segment("scope prefix", scope_prefix, SCOPE_MAX)
        if grant.read_only:
            raise Forbidden("this token is read-only")
        if not grant.may_reach(repo):
            raise Forbidden(grant.reach())
        if grant.job_id is not None and not (
            scope_prefix == grant.job_id or scope_prefix.startswith(grant.job_id + ":")
        ):
            raise Forbidden(f"this token is scoped to job {grant.job_id}: snapshot with scope_prefix {grant.job_id!r}")
        with self.store.session() as session:
            taken = snapshots.take(session, grant, repo, scope_prefix)
            target = f"{repo}/{scope_prefix}*"
            self._audit(session, grant, "snapshot.create", target, {"snapshot": taken.id, "contexts": taken.contexts})
            return {"id": taken.id, "contexts": taken.contexts}

    def restore(self, grant: Grant, snapshot_id: int) -> dict[str, Any]:
        if grant.read_only:
            raise Forbidden("this token is read-only")
        try:
            with self.store.session() as session:
                snapshot = snapshots.find(session, grant, snapshot_id)
                for item in snapshots.heads(session, snapshot):
                    self.check_write(grant, ContextRef(snapshot.repo, item.agent, item.scope))
                restored = snapshots.restore(session, grant, snapshot)
                entries = [
                    {**_ref_fields(ref), "version": row.version, "restores": item.version}
                    for ref, row, item in restored
                ]
                self._audit(session, grant, "snapshot.restore", f"snapshot:{snapshot.id}", {"restored": entries})
        except IntegrityError as exc:
            raise Conflict(
                f"a context of snapshot {snapshot_id} was written during the restore: restore again"
            ) from exc
        writes.publish(self.store, [row for _, row, _ in restored])
        return {"snapshot": snapshot_id, "restored": entries}

    # ------------------------------------------------------------------ handoffs

    def create_handoff(
        self,
        grant: Grant,
        *,
        repo: str,
        scope: str,
        from_agent: str,
        to_agent: str,
        package: dict[str, Any],
        version: int | None = None,
    ) -> dict[str, Any]:
        """Address a package (deliverable, open questions, provenance) to the next agent, with
        the sending agent's context version at that scope (the latest, or `version`)."""
        owner, name = split_repo(repo)
        ref = ContextRef.of(owner, name, from_agent, scope)
        check_segment("agent", to_agent, AGENT_MAX)
        check_json("package", package)
        self.check_write(grant, ref)
        with self.store.session() as session:
            key = ref.key(grant.installation_id)
            context = repository.latest(session, key) if version is None else repository.version(session, key, version)
            if version is not None and context is None:
                raise NotFound(f"no context {ref} version {version}")
            row = repository.create_handoff(
                session,
                installation_id=grant.installation_id,
                repo=ref.repo,
                scope=scope,
                from_agent=from_agent,
                to_agent=to_agent,
                package=package,
                context_version_id=context.id if context is not None else None,
                job_id=grant.job_id,
            )
            self._audit(session, grant, "handoff.create", f"handoff:{row.id}", {"to_agent": to_agent, "scope": scope})
            return {"id": row.id}

    def claim_handoff(self, grant: Grant, handoff_id: int) -> dict[str, Any]:
        """Claim once: the first caller gets the handoff, every later one AlreadyClaimed."""
        if grant.read_only:
            raise Forbidden("this token is read-only")
        now = datetime.now(UTC)
        with self.store.session() as session:
            row = self._handoff(session, grant, handoff_id)
            if not repository.claim_handoff(session, handoff_id, claimed_by=grant.actor, now=now):
                session.refresh(row)
                raise AlreadyClaimed(f"handoff {handoff_id} was claimed by {row.claimed_by} at {iso(row.claimed_at)}")
            set_committed_value(row, "claimed_at", now)
            set_committed_value(row, "claimed_by", grant.actor)
            self._audit(session, grant, "handoff.claim", f"handoff:{handoff_id}", {"to_agent": row.to_agent})
            return handoff_document(row, self._version_number(session, row))

    def get_handoff(self, grant: Grant, handoff_id: int) -> dict[str, Any]:
        with self.store.reading() as session:
            row = self._handoff(session, grant, handoff_id)
            return handoff_document(row, self._version_number(session, row))

    def list_handoffs(
        self,
        grant: Grant,
        *,
        to_agent: str | None = None,
        repo: str | None = None,
        scope: str | None = None,
        unclaimed: bool = True,
        limit: int = DEFAULT_LIMIT,
    ) -> list[dict[str, Any]]:
        """Handoffs of the installation, oldest first: by default the ones still waiting."""
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidRequest(f"limit must be between 1 and {MAX_LIMIT}")
        query = select(Handoff).where(Handoff.installation_id == grant.installation_id)
        if grant.repo is not None:
            query = query.where(Handoff.repo == grant.repo)
        if to_agent:
            query = query.where(Handoff.to_agent == to_agent)
        if repo:
            query = query.where(Handoff.repo == "/".join(split_repo(repo)))
        if scope:
            query = query.where(Handoff.scope == scope)
        if unclaimed:
            query = query.where(Handoff.claimed_at.is_(None))
        with self.store.reading() as session:
            rows = [
                row
                for row in session.scalars(query.order_by(Handoff.id).limit(limit))
                if grant.may_touch(row.repo, row.scope)
            ]
            return [handoff_document(row, self._version_number(session, row)) for row in rows]

    def _handoff(self, session: Session, grant: Grant, handoff_id: int) -> Handoff:
        row = session.get(Handoff, handoff_id)
        if row is None or row.installation_id != grant.installation_id or not grant.may_reach(row.repo):
            raise NotFound(f"no handoff {handoff_id}")
        if not grant.may_touch(row.repo, row.scope) or (grant.job_id and row.job_id and row.job_id != grant.job_id):
            raise Forbidden(f"handoff {handoff_id} belongs to another job than this token's ({grant.job_id})")
        return row

    @staticmethod
    def _version_number(session: Session, row: Handoff) -> int | None:
        if row.context_version_id is None:
            return None
        return session.scalar(select(ContextVersion.version).where(ContextVersion.id == row.context_version_id))

    @staticmethod
    def _audit(session: Session, grant: Grant, action: str, target: str, details: dict[str, Any]) -> None:
        session.add(
            AuditEntry(
                actor=grant.actor,
                action=action,
                target=target[:512],
                details=details,
                installation_id=grant.installation_id,
                job_id=grant.job_id,
            )
        )


def _ref_fields(ref: ContextRef) -> dict[str, str]:
    owner, _, name = ref.repo.partition("/")
    return {"owner": owner, "repo": name, "agent": ref.agent, "scope": ref.scope}
