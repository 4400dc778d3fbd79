"""The Learning Curator: proposes changes to `.github/waooaw.yml` from outcomes, as a pull request.

- `evidence.py` — outcomes per WowVision rule and per agent in a repository, and the thresholds;
- `proposals.py` — the changes they call for (a rule's severity lowered or its paths scoped, an
  agent paused), the edited file and the pull request's body with the evidence (pure);
- `agent.py` — `/waooaw curate` and `curate`, which the app's daily run calls too
  (bot/reputation_jobs.py).

It never applies a change: merging its pull request is the decision. docs/reputation.md says when
it proposes what.
"""

from agents.curator.agent import Curation, LearningCurator, catalogue, curate
from agents.curator.evidence import CURATOR, THRESHOLDS, Evidence, Thresholds, gather
from agents.curator.proposals import Proposal, propose

__all__ = [
    "CURATOR",
    "THRESHOLDS",
    "Curation",
    "Evidence",
    "LearningCurator",
    "Proposal",
    "Thresholds",
    "catalogue",
    "curate",
    "gather",
    "propose",
]
