"""The evidence the Learning Curator weighs: outcomes per WowVision rule and per agent in a repository.

An outcome about a rule (it has one: a finding fixed, a rule ignored, a review thread on a finding)
judges the rule; every other outcome (a pull request merged or closed, a 👍 or 👎, triage kept or
changed) judges the agent. Only outcomes observed after the latest merge of a curator pull request
in the repository count: what came before was acted on when that pull request was merged.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from agents.reputation.outcomes import installation_key
from agents.reputation.score import Score, Tally, score
from agents.store.tables import AgentOutcome

CURATOR = "learning-curator"

FOR_RULE = ("finding_fixed", "thread_resolved")
AGAINST_RULE = ("finding_ignored", "thread_unresolved")
ITEMS = 200  # outcomes read per candidate, newest first: its links and the paths it is scoped by


@dataclass(frozen=True)
class Thresholds:
    """When the evidence is enough to propose a change; docs/reputation.md ("The Learning Curator")."""

    rule_ignored: int = 1  # a rule dismissed with `/wowvision ignore` (counted once per rule) ...
    rule_unresolved: int = 3  # ... or review threads on its findings a person marked unresolved, at least
    rule_fixed_max: int = 0  # and its findings fixed (or their threads resolved) at most this often: never
    scope_paths: int = 2  # outcomes against a rule with a path, all under one directory: scope it away from there
    agent_outcomes: int = 5  # an agent judged by at least this many outcomes (not about a rule) ...
    agent_against: float = 2 / 3  # ... whose weight against it is at least this share: propose pausing it


THRESHOLDS = Thresholds()


@dataclass(frozen=True)
class Item:
    """One outcome as the pull request's body cites it."""

    kind: str
    positive: bool
    subject: str
    url: str | None
    path: str | None
    line: int | None
    observed_at: datetime


@dataclass(frozen=True)
class RuleEvidence:
    rule: str
    counts: dict[str, int]  # kind → outcomes
    score: Score  # the rule's own score, as an agent's is computed
    items: tuple[Item, ...] = ()  # newest first

    @property
    def fixed(self) -> int:
        return sum(self.counts.get(kind, 0) for kind in FOR_RULE)

    @property
    def against(self) -> int:
        return sum(self.counts.get(kind, 0) for kind in AGAINST_RULE)

    def over(self, t: Thresholds) -> bool:
        ignored, unresolved = self.counts.get("finding_ignored", 0), self.counts.get("thread_unresolved", 0)
        return self.fixed <= t.rule_fixed_max and (ignored >= t.rule_ignored or unresolved >= t.rule_unresolved)


@dataclass(frozen=True)
class AgentEvidence:
    agent: str
    counts: dict[str, int]
    score: Score  # over the outcomes that judge the agent (none about a rule)
    weight_for: float
    weight_against: float
    items: tuple[Item, ...] = ()

    @property
    def against_share(self) -> float:
        total = self.weight_for + self.weight_against
        return self.weight_against / total if total else 0.0

    def over(self, t: Thresholds) -> bool:
        return self.score.outcomes >= t.agent_outcomes and self.against_share >= t.agent_against


@dataclass(frozen=True)
class Evidence:
    since: datetime | None  # the latest merge of a curator pull request here; None: every outcome counts
    rules: tuple[RuleEvidence, ...]  # over the thresholds, by rule
    agents: tuple[AgentEvidence, ...]  # over the thresholds, by agent


def gather(session: Session, installation_id: int | None, repo: str, t: Thresholds = THRESHOLDS) -> Evidence:
    """The rules and agents of `repo` whose outcomes are over the thresholds, with what they are."""
    where: list[Any] = [AgentOutcome.installation_id == installation_key(installation_id), AgentOutcome.repo == repo]
    since = session.scalar(
        select(func.max(AgentOutcome.observed_at)).where(
            *where, AgentOutcome.agent == CURATOR, AgentOutcome.kind == "pr_merged"
        )
    )
    if since is not None:
        where.append(AgentOutcome.observed_at > since)
    by_rule: dict[str, list[Tally]] = defaultdict(list)
    by_agent: dict[str, list[Tally]] = defaultdict(list)
    rows = session.execute(
        select(
            AgentOutcome.agent,
            AgentOutcome.rule,
            AgentOutcome.kind,
            AgentOutcome.positive,
            func.count().label("n"),
            func.sum(AgentOutcome.weight).label("weight"),
        )
        .where(*where)
        .group_by(AgentOutcome.agent, AgentOutcome.rule, AgentOutcome.kind, AgentOutcome.positive)
    )
    for agent, rule, kind, positive, n, weight in rows:
        tally = Tally(kind, bool(positive), int(n), float(weight or 0.0))
        (by_rule[rule] if rule is not None else by_agent[agent]).append(tally)
    rules = []
    for rule, tallies in sorted(by_rule.items()):
        found = RuleEvidence(rule, _counts(tallies), score(f"rule {rule}", repo, tallies))
        if found.over(t):
            rules.append(replace(found, items=_items(session, where, rule=rule)))
    agents = []
    for agent, tallies in sorted(by_agent.items()):
        weight_for = sum(x.weight for x in tallies if x.positive)
        weight_against = sum(x.weight for x in tallies if not x.positive)
        found_agent = AgentEvidence(agent, _counts(tallies), score(agent, repo, tallies), weight_for, weight_against)
        if found_agent.over(t):
            items = _items(session, where, agent=agent)
            agents.append(
                AgentEvidence(agent, found_agent.counts, found_agent.score, weight_for, weight_against, items)
            )
    return Evidence(since, tuple(rules), tuple(agents))


def _counts(tallies: list[Tally]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for tally in tallies:
        counts[tally.kind] += tally.count
    return dict(sorted(counts.items()))


def _items(
    session: Session, where: list[Any], *, rule: str | None = None, agent: str | None = None
) -> tuple[Item, ...]:
    query = select(
        AgentOutcome.kind,
        AgentOutcome.positive,
        AgentOutcome.subject,
        AgentOutcome.url,
        AgentOutcome.evidence,
        AgentOutcome.observed_at,
    ).where(*where)
    if rule is not None:
        query = query.where(AgentOutcome.rule == rule)
    else:
        query = query.where(AgentOutcome.agent == agent, AgentOutcome.rule.is_(None))
    rows = session.execute(query.order_by(AgentOutcome.observed_at.desc(), AgentOutcome.id.desc()).limit(ITEMS))
    return tuple(
        Item(kind, bool(positive), subject, url, _text(evidence, "path"), _int(evidence, "line"), at)
        for kind, positive, subject, url, evidence, at in rows
    )


def _text(evidence: dict[str, Any] | None, key: str) -> str | None:
    value = (evidence or {}).get(key)
    return value if isinstance(value, str) and value else None


def _int(evidence: dict[str, Any] | None, key: str) -> int | None:
    value = (evidence or {}).get(key)
    return value if isinstance(value, int) else None
