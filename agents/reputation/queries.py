"""Scores from the store: one GROUP BY for the counts, one read of the latest evidence."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from agents.reputation.outcomes import installation_key
from agents.reputation.score import Evidence, Score, Tally, score, unjudged
from agents.store.tables import AgentOutcome

EVIDENCE = 10  # outcomes a score shows, per agent


def scores(session: Session, installation_id: int | None, repo: str, *, evidence: int = EVIDENCE) -> dict[str, Score]:
    """Every agent with an outcome in `repo` of the installation, with its score and latest evidence."""
    where = (AgentOutcome.installation_id == installation_key(installation_id), AgentOutcome.repo == repo)
    tallies: dict[str, list[Tally]] = defaultdict(list)
    counts = session.execute(
        select(
            AgentOutcome.agent,
            AgentOutcome.kind,
            AgentOutcome.positive,
            func.count().label("n"),
            func.sum(AgentOutcome.weight).label("weight"),
        )
        .where(*where)
        .group_by(AgentOutcome.agent, AgentOutcome.kind, AgentOutcome.positive)
    )
    for agent, kind, positive, n, weight in counts:
        tallies[agent].append(Tally(kind, bool(positive), int(n), float(weight or 0.0)))
    latest: dict[str, list[Evidence]] = defaultdict(list)
    if evidence > 0 and tallies:
        # The newest outcomes of the repository, enough to give each agent its share.
        rows = session.execute(
            select(
                AgentOutcome.agent,
                AgentOutcome.kind,
                AgentOutcome.positive,
                AgentOutcome.subject,
                AgentOutcome.observed_at,
                AgentOutcome.url,
                AgentOutcome.rule,
            )
            .where(*where)
            .order_by(AgentOutcome.observed_at.desc(), AgentOutcome.id.desc())
            .limit(evidence * len(tallies) * 4)
        )
        for agent, kind, positive, subject, at, url, rule in rows:
            if len(latest[agent]) < evidence:
                latest[agent].append(Evidence(kind, bool(positive), subject, at, url, rule))
    return {agent: score(agent, repo, tallies[agent], latest[agent]) for agent in sorted(tallies)}


def ranked(found: dict[str, Score], agents: Sequence[str]) -> list[str]:
    """`agents` best first by score (an agent without outcomes has the prior's), for a coordinator's choice."""
    return sorted(agents, key=lambda name: (-(found.get(name) or unjudged(name, "")).value, name))
