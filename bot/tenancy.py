"""Installations and their repositories, kept from `installation`, `installation_repositories` and
`repository` (renamed, transferred) events.

An uninstalled or suspended installation gets no more work from the moment its event
is handled; `waooaw db prune` deletes its data after the retention period. The ids of
the account and of each repository are kept with the names: a name can change hands
(renamed, or deleted and made again), an id cannot.

Everything kept of a repository is keyed by (installation, full name). When a repository is
renamed, or transferred within its installation, its current state moves to the new name in
one transaction, so its agents carry on where they were; history (deliveries, runs, the
decision ledger outside jobs, the audit log) keeps the name it had then.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import structlog
from sqlalchemy import CursorResult, Text, delete, exists, or_, select, true, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session, aliased

from agents.context.models import ContextRestore, ContextSnapshot, ContextSnapshotItem, ContextVersion, Handoff
from agents.events import Event
from agents.store.db import Store, dialect_insert
from agents.store.tables import (
    NO_INSTALLATION,
    AgentHire,
    AgentMessage,
    AgentOutcome,
    AgentRun,
    ApiToken,
    AuditEntry,
    Decision,
    DecisionCacheEntry,
    InboxRecord,
    Installation,
    PublishedOutput,
    TaskAssignment,
)

log = structlog.get_logger(__name__)

# What `apply` keeps installations and their repositories from: intake queues these whatever the
# agents want. Other actions of `repository` change nothing kept here, and stay ignored.
TENANCY_KINDS = frozenset({"installation", "installation_repositories", "repository.renamed", "repository.transferred"})
TENANCY_EVENTS = frozenset(kind.partition(".")[0] for kind in TENANCY_KINDS)  # what the App subscribes to
_STATUS_BY_ACTION = {"created": "active", "unsuspend": "active", "suspend": "suspended", "deleted": "deleted"}


def handles(name: str, action: str | None) -> bool:
    """Whether `apply` acts on a delivery of this event and action."""
    return name in TENANCY_KINDS or f"{name}.{action}" in TENANCY_KINDS


def apply(session: Session, event: Event) -> None:
    installation = event.payload.get("installation") or {}
    if not handles(event.name, event.action) or not isinstance(installation.get("id"), int):
        return
    # Two events of one installation may be handled at once: create the row race-free.
    session.execute(
        dialect_insert(session.get_bind().dialect.name, Installation)
        .values(id=installation["id"], status="active", repos=[], repo_ids={})
        .on_conflict_do_nothing(index_elements=["id"])
    )
    row = session.get(Installation, installation["id"], with_for_update=True)
    assert row is not None  # inserted above if it was missing
    account = installation.get("account") or {}
    row.account = account.get("login") or row.account
    row.account_id = account.get("id") if isinstance(account.get("id"), int) else row.account_id
    if event.name == "installation":
        row.status = _STATUS_BY_ACTION.get(event.action or "", row.status)
        if event.action == "created":
            _change_repos(row, event.payload.get("repositories") or [], [])
    elif event.name == "installation_repositories":
        _change_repos(
            row, event.payload.get("repositories_added") or [], event.payload.get("repositories_removed") or []
        )
    else:
        _move_repository(session, row, event)


def _change_repos(row: Installation, added: list[dict[str, Any]], removed: list[dict[str, Any]]) -> None:
    gone = {repo["full_name"] for repo in removed}
    ids = {repo["full_name"]: repo["id"] for repo in added if isinstance(repo.get("id"), int)}
    row.repos = sorted((set(row.repos) | {repo["full_name"] for repo in added}) - gone)
    row.repo_ids = {name: ident for name, ident in ({**row.repo_ids, **ids}).items() if name not in gone}


@dataclass(frozen=True)
class Move:
    """A repository's change of full name, as a `repository` delivery tells it."""

    old: str
    new: str
    repository_id: int


# The current state of a repository, by what names a row within (installation, repository): a row whose
# name is already taken under the new full name stays under the old one (see _move_rows).
_STATE = (
    (AgentHire, ("agent",)),
    (PublishedOutput, ("marker",)),
    (AgentOutcome, ("agent", "kind", "subject")),
    (TaskAssignment, ("coe", "task_key")),
    (AgentMessage, ()),
    (ApiToken, ()),
    (ContextSnapshot, ()),
    # A context moves whole or not at all, so that its versions' lineage stays under one name.
    (ContextVersion, ("agent", "scope")),
)


def _move_repository(session: Session, row: Installation, event: Event) -> None:
    """Move the repository's current state in the installation `row` (locked) to its new full name."""
    move = _move_of(event)
    if move is None:
        log.warning("tenancy.move_unreadable", delivery=event.delivery_id, action=event.action)
        return
    if move.old == move.new:
        return
    if event.action == "transferred" and move.old not in row.repos:
        # The new owner's installation is sent the event; the data belongs to the tenant that had it.
        log.info(
            "tenancy.transferred_from_another_installation",
            installation=row.id,
            old=move.old,
            new=move.new,
            kept_by=[ident for ident in installations_of(session, move.old) if ident != row.id],
            detail="nothing moves: the installation that had the repository keeps its data, and here it starts fresh",
        )
        return
    refused = _move_refused(row, move)
    if refused is not None:
        log.warning("tenancy.move_refused", installation=row.id, old=move.old, new=move.new, reason=refused)
        return
    moved = {table.__tablename__: _move_rows(session, table, key, row.id, move) for table, key in _STATE}
    # A handoff goes where its context went; a job's ledger rows go with the job (its spend, its steps
    # recorded once); the rest of the ledger is history.
    moved_versions = select(ContextVersion.id).where(
        ContextVersion.installation_id == row.id, ContextVersion.repo == move.new
    )
    moved["handoffs"] = _move_rows(
        session,
        Handoff,
        (),
        row.id,
        move,
        or_(Handoff.context_version_id.is_(None), Handoff.context_version_id.in_(moved_versions)),
    )
    moved["decisions"] = _move_rows(
        session, Decision, ("job_id", "idempotency_key"), row.id, move, Decision.job_id.is_not(None)
    )
    if move.old in row.repos or move.old in row.repo_ids:
        _change_repos(row, [{"full_name": move.new, "id": move.repository_id}], [{"full_name": move.old}])
    log.info("tenancy.repository_moved", installation=row.id, old=move.old, new=move.new, rows=moved)


def _move_of(event: Event) -> Move | None:
    """The old and new full names and the id of the repository a `renamed` or `transferred` delivery names."""
    repository = event.payload.get("repository") or {}
    changes = event.payload.get("changes") or {}
    name, owner = repository.get("name"), (repository.get("owner") or {}).get("login")
    if event.action == "renamed":  # the owner is unchanged
        old_owner, old_name = owner, ((changes.get("repository") or {}).get("name") or {}).get("from")
    else:
        before = (changes.get("owner") or {}).get("from") or {}
        old_owner, old_name = (before.get("user") or before.get("organization") or {}).get("login"), name
    identity = repository.get("id")
    if not all(isinstance(part, str) for part in (old_owner, old_name, event.repo)) or not isinstance(identity, int):
        return None
    return Move(f"{old_owner}/{old_name}", cast(str, event.repo), identity)


def _move_refused(row: Installation, move: Move) -> str | None:
    """Why the installation's records say the move is not this repository's: either name recorded as
    another repository's id (a stale delivery, the old name made again since). None: it is, as far as known."""
    for name in (move.old, move.new):
        recorded = row.repo_ids.get(name)
        if recorded is not None and recorded != move.repository_id:
            return f"the installation holds {name} as repository id {recorded}, not {move.repository_id}"
    return None


def _move_rows(session: Session, table: Any, key: tuple[str, ...], installation_id: int, move: Move, *only: Any) -> int:
    """Give `table`'s rows of (installation, old name) the new name; how many moved.

    Never overwrite: a row whose `key` is already taken under the new name (an event under the new
    name was handled before the rename) stays under the old one. Run again, it moves nothing more."""
    taken = aliased(table)
    clash = exists().where(
        taken.installation_id == installation_id,
        taken.repo == move.new,
        *(getattr(taken, column) == getattr(table, column) for column in key),
    )
    moved = cast(
        CursorResult[Any],
        session.execute(
            update(table)
            .where(table.installation_id == installation_id, table.repo == move.old, ~clash if key else true(), *only)
            .values(repo=move.new)
            .execution_options(synchronize_session=False)
        ),
    )
    return moved.rowcount


def ids_refused(row: Installation, repo: str, repository_id: int, owner_id: int) -> str | None:
    """Why the repository `repo` with these ids is not the one the installation holds under that
    name; None if it is, or as far as the installation knows (ids it has not recorded)."""
    recorded = row.repo_ids.get(repo)
    if recorded is not None and recorded != repository_id:
        return (
            f"{repo} has repository id {repository_id}, "
            f"but the WAOOAW App was installed on the {repo} with id {recorded}"
        )
    if row.account_id is not None and row.account_id != owner_id:
        return (
            f"{repo} belongs to the account with id {owner_id}, but the WAOOAW App was installed on "
            f"the account {row.account} with id {row.account_id}"
        )
    return None


def remember_ids(row: Installation, repo: str, repository_id: int, owner_id: int) -> None:
    """Record the ids a verified run gave where the installation has none (it was recorded before
    ids were kept); recorded ids are never changed here."""
    if row.account_id is None:
        row.account_id = owner_id
    if repo not in row.repo_ids:
        row.repo_ids = {**row.repo_ids, repo: repository_id}


def installations_of(session: Session, repo: str) -> dict[int, str]:
    """The installations whose repositories include `repo` (normally one), with their status."""
    listed = session.scalars(
        select(Installation)
        .where(sql_cast(Installation.repos, Text).contains(f'"{repo}"', autoescape=True))
        .order_by(Installation.id)
    )
    return {row.id: row.status for row in listed if repo in row.repos}  # LIKE only narrows it down


def first_active(statuses: dict[int, str]) -> int | None:
    """Which of `installations_of`'s answer acts for the repo: the first active one (lowest id), if any."""
    return next((ident for ident, state in statuses.items() if state == "active"), None)


def active_installation(session: Session, repo: str) -> int | None:
    """The active installation that holds `repo`, if any."""
    return first_active(installations_of(session, repo))


def repo_installations(store: Store, repo: str) -> list[int]:
    """The installations that hold contexts of `repo` (normally one)."""
    with store.reading() as session:
        return list(
            session.scalars(select(ContextVersion.installation_id).where(ContextVersion.repo == repo).distinct())
        )


def status(session: Session, installation_id: int | None) -> str | None:
    """active | suspended | deleted, or None for an installation we have not heard of."""
    row = session.get(Installation, installation_id) if installation_id is not None else None
    return row.status if row is not None else None


def prune(store: Store, retention: timedelta) -> list[int]:
    """Delete everything kept for installations uninstalled longer ago than `retention`."""
    cutoff = datetime.now(UTC) - retention
    with store.session() as session:
        gone = list(
            session.scalars(
                select(Installation.id).where(Installation.status == "deleted", Installation.updated_at <= cutoff)
            )
        )
        if not gone:
            return []
        deliveries = select(InboxRecord.delivery_id).where(InboxRecord.installation_id.in_(gone))
        repos = {
            repo for row in session.scalars(select(Installation).where(Installation.id.in_(gone))) for repo in row.repos
        }
        session.execute(delete(AgentRun).where(AgentRun.delivery_id.in_(deliveries)))
        session.execute(delete(Handoff).where(Handoff.installation_id.in_(gone)))
        session.execute(delete(AgentMessage).where(AgentMessage.installation_id.in_(gone)))
        # Snapshots copy contents, and tokens open the API: both go with the installation.
        snapshots = select(ContextSnapshot.id).where(ContextSnapshot.installation_id.in_(gone))
        versions = select(ContextVersion.id).where(ContextVersion.installation_id.in_(gone))
        session.execute(
            delete(ContextRestore).where(
                ContextRestore.snapshot_id.in_(snapshots) | ContextRestore.version_id.in_(versions)
            )
        )
        session.execute(delete(ContextSnapshotItem).where(ContextSnapshotItem.snapshot_id.in_(snapshots)))
        session.execute(delete(ContextSnapshot).where(ContextSnapshot.installation_id.in_(gone)))
        session.execute(delete(ApiToken).where(ApiToken.installation_id.in_(gone)))
        session.execute(delete(AgentHire).where(AgentHire.installation_id.in_(gone)))
        session.execute(delete(ContextVersion).where(ContextVersion.installation_id.in_(gone)))
        session.execute(delete(AuditEntry).where(AuditEntry.installation_id.in_(gone)))
        session.execute(delete(DecisionCacheEntry).where(DecisionCacheEntry.installation_id.in_(gone)))
        # Another installation may hold the same repository now: its records are its own.
        session.execute(
            delete(PublishedOutput).where(
                PublishedOutput.installation_id.in_(gone)
                | ((PublishedOutput.installation_id == NO_INSTALLATION) & PublishedOutput.repo.in_(repos))
            )
        )
        session.execute(
            delete(Decision).where(
                Decision.installation_id.in_(gone) | (Decision.installation_id.is_(None) & Decision.repo.in_(repos))
            )
        )
        session.execute(delete(InboxRecord).where(InboxRecord.installation_id.in_(gone)))
        session.execute(delete(Installation).where(Installation.id.in_(gone)))
        return gone
