"""Outcomes: what happened to an agent's output, recorded once each as evidence for its reputation.

The kinds, and what each says about the agent whose output it was:

| kind | positive | seen in |
|---|---|---|
| `finding_fixed` | yes | WowVision's next review of the PR or the default branch no longer finds it |
| `finding_ignored` | no | `/wowvision ignore RULE` |
| `thread_resolved` / `thread_unresolved` | yes / no | `pull_request_review_thread` on a thread our review started |
| `triage_kept` / `triage_changed` | yes / no | a person closes our issue with its labels / adds or removes one |
| `pr_merged` / `pr_closed` | yes / no | `pull_request.closed` of a PR an agent opened |
| `reaction_up` / `reaction_down` | yes / no | 👍 / 👎 of a person on an agent's comment, read in batch |

An outcome is traced to its agent through `published_outputs` by the GitHub id of what
the agent published (a marker in a body proves nothing: anyone can paste one).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from agents.store.db import Store, dialect_insert
from agents.store.tables import NO_INSTALLATION, AgentOutcome, PublishedOutput, declared_length


@dataclass(frozen=True)
class Kind:
    positive: bool
    weight: float
    meaning: str


KINDS: dict[str, Kind] = {
    "finding_fixed": Kind(True, 1.0, "a finding fixed in a later commit"),
    "finding_ignored": Kind(False, 1.0, "a rule dismissed with /wowvision ignore"),
    "thread_resolved": Kind(True, 1.0, "a review thread resolved"),
    "thread_unresolved": Kind(False, 1.0, "a review thread unresolved"),
    "triage_kept": Kind(True, 1.0, "an issue closed with the labels it was given"),
    "triage_changed": Kind(False, 1.0, "a label of an issue changed by a person"),
    "pr_merged": Kind(True, 1.0, "a pull request merged"),
    "pr_closed": Kind(False, 1.0, "a pull request closed unmerged"),
    # A click is cheaper than any of the above: it weighs half.
    "reaction_up": Kind(True, 0.5, "a 👍 on a comment"),
    "reaction_down": Kind(False, 0.5, "a 👎 on a comment"),
}
SUBJECT_MAX = declared_length(AgentOutcome.__table__.c.subject)
URL_MAX = declared_length(AgentOutcome.__table__.c.url)
RULE_MAX = declared_length(AgentOutcome.__table__.c.rule)


@dataclass(frozen=True)
class Outcome:
    """One outcome of `agent`'s output in a repository; `subject` names what it is about within its kind."""

    installation_id: int | None  # None: no App installation (token auth), as published_outputs records it
    repo: str
    agent: str
    kind: str
    subject: str
    rule: str | None = None
    url: str | None = None
    github_id: int | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    delivery_id: str | None = None
    observed_at: datetime | None = None  # None: when it is recorded

    def row(self) -> dict[str, Any]:
        kind = KINDS[self.kind]
        values: dict[str, Any] = {
            "installation_id": installation_key(self.installation_id),
            "repo": self.repo,
            "agent": self.agent,
            "kind": self.kind,
            "subject": self.subject[:SUBJECT_MAX],
            "positive": kind.positive,
            "weight": kind.weight,
            "rule": self.rule[:RULE_MAX] if self.rule else None,
            "url": self.url if self.url and len(self.url) <= URL_MAX else None,
            "github_id": self.github_id,
            "evidence": self.evidence,
            "delivery_id": self.delivery_id,
        }
        if self.observed_at is not None:
            values["observed_at"] = self.observed_at
        return values


def installation_key(installation_id: int | None) -> int:
    return NO_INSTALLATION if installation_id is None else installation_id


def record(session: Session, outcomes: Iterable[Outcome]) -> int:
    """Record each outcome unless it is recorded already; how many were new."""
    dialect = session.get_bind().dialect.name
    new = 0
    for outcome in outcomes:
        statement = (
            dialect_insert(dialect, AgentOutcome)
            .values(**outcome.row())
            .on_conflict_do_nothing(index_elements=["installation_id", "repo", "agent", "kind", "subject"])
            .returning(AgentOutcome.id)
        )
        new += len(session.execute(statement).all())
    return new


def recorded(
    session: Session,
    installation_id: int | None,
    repo: str,
    kind: str,
    *,
    subject: str | None = None,
    github_id: int | None = None,
) -> bool:
    """Whether an outcome of `kind` is recorded about `subject`, or about the object `github_id`, whoever's it is."""
    query = select(AgentOutcome.id).where(
        AgentOutcome.installation_id == installation_key(installation_id),
        AgentOutcome.repo == repo,
        AgentOutcome.kind == kind,
    )
    if subject is not None:
        query = query.where(AgentOutcome.subject == subject)
    if github_id is not None:
        query = query.where(AgentOutcome.github_id == github_id)
    return session.scalar(query.limit(1)) is not None


def producer(
    session: Session, installation_id: int | None, repo: str, kinds: Sequence[str], github_id: int
) -> str | None:
    """The agent that published the object GitHub knows as `github_id` (a review's id, an issue's or a
    pull request's number, a comment's id) in `repo` as an output of one of `kinds`, the first kind
    first and then the latest; None when no agent did."""
    rows = session.execute(
        select(PublishedOutput.kind, PublishedOutput.agent)
        .where(
            PublishedOutput.repo == repo,
            PublishedOutput.github_id == github_id,
            PublishedOutput.installation_id == installation_key(installation_id),
            PublishedOutput.kind.in_(kinds),
        )
        .order_by(PublishedOutput.updated_at.desc(), PublishedOutput.id.desc())
    ).all()
    by_kind: dict[str, str] = {}
    for kind, agent in rows:
        by_kind.setdefault(kind, agent)
    return next((by_kind[kind] for kind in kinds if kind in by_kind), None)


def record_outcomes(store: Store, outcomes: Sequence[Outcome]) -> int:
    """`record` in a transaction of its own; nothing to write costs no transaction."""
    if not outcomes:
        return 0
    with store.session() as session:
        return record(session, outcomes)
