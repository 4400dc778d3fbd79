"""Reputation from outcomes: what happened to each agent's outputs, scored per agent per repository.

- `outcomes.py` — the kinds of outcome, and recording one once (table `agent_outcomes`);
- `agent.py` — the Outcome Clerk, which records what people do to agents' outputs (webhooks);
- `reactions.py` — 👍/👎 on agents' comments, read in batch (GitHub sends no webhook for them);
- `score.py` — the score (pure functions); `queries.py` — scores read from the store.

WowVision records its own findings fixed and rules ignored (agents/vision/outcomes.py).
Coordinators, `/waooaw status`, `waooaw agents list` and the daily report read `scores`.
"""

from agents.reputation.outcomes import KINDS, Outcome, record, record_outcomes
from agents.reputation.queries import ranked, scores
from agents.reputation.reactions import Collected, collect_reactions
from agents.reputation.score import Evidence, Score, summary, wilson_lower_bound

__all__ = [
    "KINDS",
    "Collected",
    "Evidence",
    "Outcome",
    "Score",
    "collect_reactions",
    "ranked",
    "record",
    "record_outcomes",
    "scores",
    "summary",
    "wilson_lower_bound",
]
