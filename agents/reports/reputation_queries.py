"""The report's reputation section: each agent's score per repository at the end of the day, and the day's outcomes."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Select, func, select

from agents.reports.model import AgentReputation
from agents.reports.scoped import ScopedQueries, sum_if
from agents.reputation.score import Tally, score
from agents.store.tables import AgentOutcome

ROWS = 50  # (repository, agent) rows in a report, best known first


class ReputationQueries(ScopedQueries):
    def _scoped(self, query: Select[Any]) -> Select[Any]:
        return self._installation_scope(query, AgentOutcome.installation_id)

    def rows(self) -> list[AgentReputation]:
        today = self._on_day(AgentOutcome.observed_at)
        grouped = self.session.execute(
            self._scoped(
                select(
                    AgentOutcome.repo,
                    AgentOutcome.agent,
                    AgentOutcome.kind,
                    AgentOutcome.positive,
                    func.count(),
                    func.sum(AgentOutcome.weight),
                    sum_if(today),
                )
                .where(AgentOutcome.observed_at < self.rd.end)
                .group_by(AgentOutcome.repo, AgentOutcome.agent, AgentOutcome.kind, AgentOutcome.positive)
            )
        )
        tallies: dict[tuple[str, str], list[Tally]] = defaultdict(list)
        on_day: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        for repo, agent, kind, positive, n, weight, n_today in grouped:
            tallies[(repo, agent)].append(Tally(kind, bool(positive), int(n), float(weight or 0.0)))
            on_day[(repo, agent)][0 if positive else 1] += int(n_today)
        rows = []
        for (repo, agent), kinds in tallies.items():
            found = score(agent, repo, kinds)
            rows.append(
                AgentReputation(
                    repo=repo,
                    agent=agent,
                    score=round(found.value, 4),
                    positive=found.positive,
                    negative=found.negative,
                    positive_today=on_day[(repo, agent)][0],
                    negative_today=on_day[(repo, agent)][1],
                    by_kind={kind: counts.positive + counts.negative for kind, counts in found.by_kind.items()},
                )
            )
        return sorted(rows, key=lambda r: (r.repo, -r.score, r.agent))[:ROWS]

    def findings_fixed(self) -> int:
        return (
            self.session.scalar(
                self._scoped(
                    select(func.count()).where(
                        AgentOutcome.kind == "finding_fixed", self._on_day(AgentOutcome.observed_at)
                    )
                )
            )
            or 0
        )
