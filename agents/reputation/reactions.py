"""👍 and 👎 on agents' comments, read in batch: GitHub sends no webhook for a reaction.

`collect_reactions` reads the reactions of every comment an agent published or edited
since a time, one GitHub call per comment (each paced by the edge's rate limiter, as every
call is), and makes the recorded outcomes match them: a person's 👍 or 👎 is recorded once,
and one taken back since is withdrawn. Bots' reactions (our own 👀 among them) are no
verdict. The app's schedule calls it (bot/reputation_jobs.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import delete, select

from agents.outputs import Comment
from agents.ports import RepoReader
from agents.reputation.outcomes import Outcome, installation_key, record
from agents.store.db import Store
from agents.store.tables import AgentOutcome, PublishedOutput

log = structlog.get_logger(__name__)

VERDICTS = {"+1": "reaction_up", "-1": "reaction_down"}


@dataclass(frozen=True)
class PublishedComment:
    installation_id: int
    repo: str
    agent: str
    comment_id: int
    url: str | None


@dataclass(frozen=True)
class Collected:
    comments: int = 0  # read
    recorded: int = 0  # new outcomes
    withdrawn: int = 0  # outcomes of reactions taken back
    unreadable: int = 0  # installations without a reader


async def collect_reactions(
    store: Store, reader_for: Callable[[int | None], RepoReader | None], since: datetime
) -> Collected:
    """Read the reactions of the agents' comments published or edited since `since`.

    `reader_for` gives the reader of an installation (None: token auth), or None where GitHub
    cannot be read; those comments are left for a later run.
    """
    comments = await asyncio.to_thread(_comments, store, since)
    total = Collected()
    readers: dict[int, RepoReader | None] = {}
    for comment in comments:
        if comment.installation_id not in readers:
            readers[comment.installation_id] = reader_for(_installation(comment.installation_id))
        reader = readers[comment.installation_id]
        if reader is None:
            total = Collected(total.comments, total.recorded, total.withdrawn, total.unreadable + 1)
            continue
        reactions = await reader.comment_reactions(comment.repo, comment.comment_id)
        if reactions is None:
            continue  # the comment is gone; what was recorded of it stays
        new, withdrawn = await asyncio.to_thread(_reconcile, store, comment, reactions)
        total = Collected(total.comments + 1, total.recorded + new, total.withdrawn + withdrawn, total.unreadable)
    log.info(
        "reputation.reactions",
        comments=total.comments,
        recorded=total.recorded,
        withdrawn=total.withdrawn,
        unreadable=total.unreadable,
    )
    return total


def _installation(key: int) -> int | None:
    return None if key == installation_key(None) else key


def _comments(store: Store, since: datetime) -> list[PublishedComment]:
    with store.reading() as session:
        rows = session.execute(
            select(
                PublishedOutput.installation_id,
                PublishedOutput.repo,
                PublishedOutput.agent,
                PublishedOutput.github_id,
                PublishedOutput.url,
            )
            .where(
                PublishedOutput.kind == Comment.kind,
                PublishedOutput.github_id.isnot(None),
                PublishedOutput.updated_at >= since,
            )
            .order_by(PublishedOutput.installation_id, PublishedOutput.id)
        ).all()
    return [
        PublishedComment(i, repo, agent, github_id, url)
        for i, repo, agent, github_id, url in rows
        if github_id is not None
    ]


def outcomes_of(comment: PublishedComment, reactions: Sequence[dict[str, Any]]) -> list[Outcome]:
    """A person's 👍 or 👎 on the comment, one outcome each (by who and which)."""
    found = []
    for reaction in reactions:
        user = reaction.get("user") or {}
        kind = VERDICTS.get(reaction.get("content") or "")
        if kind is None or user.get("type") != "User" or not isinstance(user.get("id"), int):
            continue
        found.append(
            Outcome(
                _installation(comment.installation_id),
                comment.repo,
                comment.agent,
                kind,
                f"comment-{comment.comment_id}:user-{user['id']}",
                url=comment.url,
                github_id=comment.comment_id,
                evidence={"by": user.get("login"), "reaction": reaction.get("id")},
            )
        )
    return found


def _reconcile(store: Store, comment: PublishedComment, reactions: Sequence[dict[str, Any]]) -> tuple[int, int]:
    current = outcomes_of(comment, reactions)
    keep = {(outcome.kind, outcome.subject) for outcome in current}
    with store.session() as session:
        recorded = session.execute(
            select(AgentOutcome.id, AgentOutcome.kind, AgentOutcome.subject).where(
                AgentOutcome.installation_id == comment.installation_id,
                AgentOutcome.repo == comment.repo,
                AgentOutcome.agent == comment.agent,
                AgentOutcome.kind.in_(VERDICTS.values()),
                AgentOutcome.github_id == comment.comment_id,
            )
        ).all()
        gone = [row_id for row_id, kind, subject in recorded if (kind, subject) not in keep]
        if gone:
            session.execute(delete(AgentOutcome).where(AgentOutcome.id.in_(gone)))
        return record(session, current), len(gone)
