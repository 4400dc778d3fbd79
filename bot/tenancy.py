"""Installations and their repositories, kept from `installation` and `installation_repositories` events.

An uninstalled or suspended installation gets no more work from the moment its event
is handled; `waooaw db prune` deletes its data after the retention period. The ids of
the account and of each repository are kept with the names: a name can change hands
(renamed, or deleted and made again), an id cannot.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Text, cast, delete, select
from sqlalchemy.orm import Session

from agents.context.models import ContextRestore, ContextSnapshot, ContextSnapshotItem, ContextVersion, Handoff
from agents.events import Event
from agents.store.db import Store, dialect_insert
from agents.store.tables import (
    NO_INSTALLATION,
    AgentHire,
    AgentRun,
    ApiToken,
    AuditEntry,
    Decision,
    DecisionCacheEntry,
    InboxRecord,
    Installation,
    PublishedOutput,
)

TENANCY_EVENTS = frozenset({"installation", "installation_repositories"})
_STATUS_BY_ACTION = {"created": "active", "unsuspend": "active", "suspend": "suspended", "deleted": "deleted"}


def apply(session: Session, event: Event) -> None:
    installation = event.payload.get("installation") or {}
    if event.name not in TENANCY_EVENTS or not isinstance(installation.get("id"), int):
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
    else:
        _change_repos(
            row, event.payload.get("repositories_added") or [], event.payload.get("repositories_removed") or []
        )


def _change_repos(row: Installation, added: list[dict[str, Any]], removed: list[dict[str, Any]]) -> None:
    gone = {repo["full_name"] for repo in removed}
    ids = {repo["full_name"]: repo["id"] for repo in added if isinstance(repo.get("id"), int)}
    row.repos = sorted((set(row.repos) | {repo["full_name"] for repo in added}) - gone)
    row.repo_ids = {name: ident for name, ident in ({**row.repo_ids, **ids}).items() if name not in gone}


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
        .where(cast(Installation.repos, Text).contains(f'"{repo}"', autoescape=True))
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
