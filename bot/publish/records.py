"""The record of what was published: one row per marker, within an installation's repository."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import select

from agents.store.tables import NO_INSTALLATION, PublishedOutput, utcnow
from bot.publish.common import Origin

if TYPE_CHECKING:
    from githubkit import GitHub

    from agents.store.db import Store
    from bot.github import GitHubClients

T = TypeVar("T")
Where = tuple[int | None, str | None]  # github_id and url of what an output became


@dataclass(frozen=True)
class RecordKey:
    """What a record is found by: the installation, the repository and the marker."""

    installation_id: int
    repo: str
    marker: str


def key_for(origin: Origin, repo: str, hidden: str) -> RecordKey:
    installation = origin.installation_id if origin.installation_id is not None else NO_INSTALLATION
    return RecordKey(installation, repo, hidden)


@dataclass(frozen=True)
class Record:
    github_id: int | None
    url: str | None
    content_hash: str | None

    @property
    def where(self) -> Where:
        return self.github_id, self.url


class PublishingBase:
    """The GitHub clients and the record of what was published (`published_outputs`), which every kind uses."""

    def __init__(self, store: Store, clients: GitHubClients) -> None:
        self.store = store
        self.clients = clients

    async def _ours(self, github: GitHub[Any], found: Any) -> bool:
        """Whether an object found by its marker is ours. Anyone can paste a marker into a comment,
        an issue or a review; taking theirs for ours would keep ours from ever being posted (or,
        for a review, dismiss theirs). Where our author cannot be learnt, the marker decides."""
        author = await self.clients.author_id(github)
        return author is None or (found.user is not None and found.user.id == author)

    # -- the record

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    def _load_sync(self, key: RecordKey) -> Record | None:
        with self.store.reading() as session:
            row = session.execute(
                select(PublishedOutput.github_id, PublishedOutput.url, PublishedOutput.content_hash).where(
                    PublishedOutput.installation_id == key.installation_id,
                    PublishedOutput.repo == key.repo,
                    PublishedOutput.marker == key.marker,
                )
            ).first()
            return None if row is None else Record(*row)

    async def _load(self, key: RecordKey) -> Record | None:
        return await self._db(self._load_sync, key)

    def _save_sync(self, key: RecordKey, values: dict[str, Any]) -> None:
        # One statement, right after the call it records: inserted, or updated where another
        # publish of the same marker (a retry, another worker) recorded it first.
        now = utcnow()
        statement = self.store.insert(PublishedOutput).values(
            installation_id=key.installation_id,
            repo=key.repo,
            marker=key.marker,
            created_at=now,
            updated_at=now,
            **values,
        )
        statement = statement.on_conflict_do_update(
            index_elements=["installation_id", "repo", "marker"], set_={**values, "updated_at": now}
        )
        with self.store.engine.begin() as connection:
            connection.execute(statement)

    async def _save(
        self,
        key: RecordKey,
        agent: str,
        kind: str,
        origin: Origin,
        *,
        github_id: int | None,
        url: str | None,
        digest: str | None,
    ) -> None:
        values = {
            "agent": agent,
            "kind": kind,
            "github_id": github_id,
            "url": url,
            "content_hash": digest,
            "delivery_id": origin.delivery_id,
        }
        await self._db(self._save_sync, key, values)

    async def _default_branch(self, github: GitHub[Any], owner: str, name: str) -> str:
        return (await github.rest.repos.async_get(owner, name)).parsed_data.default_branch
