"""An agent's score in a repository from its outcomes: pure functions, no store.

The score is the Wilson lower bound (95 %) of the share of positive weight, with a prior of
one positive and one negative outcome added: it rises with good outcomes and with how many
there are, so three merged pull requests rank below thirty, and an agent nobody has judged
yet starts low rather than at either end. `mean` is the share itself, with the same prior.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

Z = 1.96  # 95 %
PRIOR_POSITIVE = 1.0
PRIOR_NEGATIVE = 1.0


def wilson_lower_bound(positive: float, total: float, z: float = Z) -> float:
    """The lower bound of the Wilson score interval of `positive` successes out of `total`; 0 for none."""
    if total <= 0:
        return 0.0
    share = positive / total
    z2 = z * z
    centre = share + z2 / (2 * total)
    spread = z * math.sqrt(share * (1 - share) / total + z2 / (4 * total * total))
    return max(0.0, (centre - spread) / (1 + z2 / total))


@dataclass(frozen=True)
class Evidence:
    """One outcome as a score shows it."""

    kind: str
    positive: bool
    subject: str
    observed_at: datetime
    url: str | None = None
    rule: str | None = None


@dataclass(frozen=True)
class Tally:
    """Outcomes of one kind: how many, and their weight."""

    kind: str
    positive: bool
    count: int
    weight: float


@dataclass(frozen=True)
class KindCounts:
    positive: int = 0
    negative: int = 0


@dataclass(frozen=True)
class Score:
    agent: str
    repo: str
    value: float  # the Wilson lower bound, 0..1: what to rank agents by
    mean: float  # the positive share of weight, with the prior
    positive: int  # outcomes
    negative: int
    by_kind: dict[str, KindCounts] = field(default_factory=dict)
    evidence: tuple[Evidence, ...] = ()  # the latest, newest first

    @property
    def outcomes(self) -> int:
        return self.positive + self.negative


def score(agent: str, repo: str, tallies: Iterable[Tally], evidence: Iterable[Evidence] = ()) -> Score:
    tallies = list(tallies)
    good = sum(t.weight for t in tallies if t.positive) + PRIOR_POSITIVE
    bad = sum(t.weight for t in tallies if not t.positive) + PRIOR_NEGATIVE
    by_kind: dict[str, KindCounts] = {}
    for t in tallies:
        was = by_kind.get(t.kind, KindCounts())
        by_kind[t.kind] = (
            KindCounts(was.positive + t.count, was.negative)
            if t.positive
            else KindCounts(was.positive, was.negative + t.count)
        )
    return Score(
        agent=agent,
        repo=repo,
        value=wilson_lower_bound(good, good + bad),
        mean=good / (good + bad),
        positive=sum(t.count for t in tallies if t.positive),
        negative=sum(t.count for t in tallies if not t.positive),
        by_kind=dict(sorted(by_kind.items())),
        evidence=tuple(sorted(evidence, key=lambda e: e.observed_at, reverse=True)),
    )


def unjudged(agent: str, repo: str) -> Score:
    """The score of an agent with no outcome in the repository: the prior's."""
    return score(agent, repo, ())


def summary(value: Score | None) -> str:
    """`0.42 (7+ / 2−)`, or `—` without outcomes: the column `/waooaw status` and the report show."""
    if value is None or value.outcomes == 0:
        return "—"
    return f"{value.value:.2f} ({value.positive}+ / {value.negative}−)"
