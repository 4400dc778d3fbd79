"""Reactions on agents' comments, read into their reputation on the app's schedule.

GitHub sends no webhook for a reaction, so every WAOOAW_REACTIONS_INTERVAL one process of
several reads the reactions of the comments agents published or edited in the last
REACTIONS_WINDOW (agents/reputation/reactions.py). A run cut short is safe: the next one reads
them all again, and records only what it has not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

import structlog

from agents.ports import RepoReader
from agents.reputation import Collected, collect_reactions
from agents.store.db import Store
from agents.store.tables import utcnow
from bot.github import GitHubClients
from bot.reader import GitHubReader
from bot.schedule import Lease, Leases, run_every
from bot.settings import Settings

log = structlog.get_logger(__name__)

REACTIONS_JOB = "reputation-reactions"
REACTIONS_WINDOW = timedelta(days=14)  # comments older than this are not read again


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
