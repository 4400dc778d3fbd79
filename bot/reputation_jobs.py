"""Reputation on the app's schedule: reactions read in, and the Learning Curator's daily run.

GitHub sends no webhook for a reaction, so every WAOOAW_REACTIONS_INTERVAL one process of
several reads the reactions of the comments agents published or edited in the last
REACTIONS_WINDOW (agents/reputation/reactions.py). A run cut short is safe: the next one reads
them all again, and records only what it has not.

Every WAOOAW_CURATE_INTERVAL (a day) one process runs the Learning Curator (agents/curator) on
each repository with outcomes new since its last finished run, and publishes the pull request
it proposes, if any; the same pull request as `/waooaw curate` (same key), brought up to date.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select

from agents.curator import CURATOR, catalogue, curate
from agents.ports import RepoReader
from agents.registry import Registry
from agents.reputation import Collected, collect_reactions
from agents.reputation.outcomes import installation_key
from agents.store.db import Store
from agents.store.tables import AgentOutcome, utcnow
from bot.github import GitHubClients
from bot.publish import Origin, Publisher
from bot.reader import GitHubReader
from bot.schedule import Lease, Leases, run_every
from bot.settings import Settings

log = structlog.get_logger(__name__)

REACTIONS_JOB = "reputation-reactions"
REACTIONS_WINDOW = timedelta(days=14)  # comments older than this are not read again
CURATE_JOB = "learning-curator"


def readers(settings: Settings, clients: GitHubClients) -> Callable[[int | None], RepoReader | None]:
    """The reader of an installation's comments; None for those made with a token when there is none now."""

    def reader_for(installation_id: int | None) -> RepoReader | None:
        if installation_id is None and clients.mode == "app" and settings.github_token is None:
            return None
        return GitHubReader(clients, installation_id)

    return reader_for


async def read_reactions(settings: Settings, clients: GitHubClients, store: Store) -> Collected:
    """One run: the reactions of the comments of the last REACTIONS_WINDOW."""
    return await collect_reactions(store, readers(settings, clients), utcnow() - REACTIONS_WINDOW)


def reactions_schedule(
    settings: Settings, clients: GitHubClients | None, store: Store, stop: asyncio.Event
) -> Coroutine[Any, Any, None] | None:
    """The reading of reactions every WAOOAW_REACTIONS_INTERVAL until `stop`; None when it is off (an interval
    of 0, or no GitHub credentials)."""
    interval = settings.reactions_interval
    if interval <= timedelta(0) or clients is None:
        return None
    log.info("reputation.reactions_schedule", every_s=interval.total_seconds())

    async def job(_lease: Lease) -> None:
        await read_reactions(settings, clients, store)

    return run_every(interval, REACTIONS_JOB, job, Leases(store), stop)


async def run_curator(
    settings: Settings,
    clients: GitHubClients,
    store: Store,
    registry: Registry,
    publisher: Publisher,
    since: datetime | None,
) -> int:
    """One run over the repositories with outcomes observed since `since` (None: all): how many pull
    requests it published (opened or brought up to date)."""
    reader_for = readers(settings, clients)
    agents = catalogue(registry)
    origin = f"curate-{utcnow():%Y-%m-%d}"
    published = 0
    for installation_id, repo in await asyncio.to_thread(_repositories, store, registry, since):
        reader = reader_for(installation_id)
        if reader is None:
            continue
        found = await curate(store, agents, reader, installation_id, repo)
        if found.problem is not None:
            log.info("curator.config_unreadable", repo=repo, error=str(found.problem))
        if found.pull is not None:
            await publisher.publish(CURATOR, [found.pull], Origin(origin, installation_id))
            published += 1
    log.info("curator.run", published=published)
    return published


def _repositories(store: Store, registry: Registry, since: datetime | None) -> list[tuple[int | None, str]]:
    """The (installation, repository) pairs with new outcomes where the curator works."""
    query = select(AgentOutcome.installation_id, AgentOutcome.repo).distinct()
    if since is not None:
        query = query.where(AgentOutcome.observed_at >= since)
    curator = [registry.get(CURATOR)]
    found = []
    with store.reading() as session:
        for key, repo in session.execute(query.order_by(AgentOutcome.installation_id, AgentOutcome.repo)).all():
            installation_id = None if key == installation_key(None) else key
            if registry.standings(session, installation_id, repo, curator)[CURATOR].wakes:
                found.append((installation_id, repo))
    return found


def curator_schedule(
    settings: Settings,
    clients: GitHubClients | None,
    store: Store,
    registry: Registry,
    publisher: Publisher,
    stop: asyncio.Event,
) -> Coroutine[Any, Any, None] | None:
    """The Learning Curator every WAOOAW_CURATE_INTERVAL until `stop`; None when it is off (an interval of 0,
    or no GitHub credentials)."""
    interval = settings.curate_interval
    if interval <= timedelta(0) or clients is None or CURATOR not in registry.names():
        return None
    log.info("curator.schedule", every_s=interval.total_seconds())

    async def job(lease: Lease) -> None:
        await run_curator(settings, clients, store, registry, publisher, lease.last_done_at)

    return run_every(interval, CURATE_JOB, job, Leases(store), stop)
