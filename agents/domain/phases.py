"""The phase table: who works next is decided here, in code.

A phase is a sequence of groups; the agents of one group work in parallel on what
earlier groups handed on. Three phases have a rule after their groups: `quality`
loops QA and Critique with revisions, `validation` gates on skill confidence, and
`publication` writes the spec. `batchable` phases may go through the Message Batches API
(half price) when the deployment turns it on: nobody is waiting on them step by step.
A step is one agent's answer in one place of the table, named by a key that stays the same
across runs, which is what makes resume exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PhaseRule = Literal["none", "review-loop", "confidence-gate", "publish"]


@dataclass(frozen=True)
class Phase:
    id: str
    title: str
    groups: tuple[tuple[str, ...], ...]
    rule: PhaseRule = "none"
    batchable: bool = False

    def step(self, agent: str) -> str:
        return f"{self.id}.{agent}"


PHASES: tuple[Phase, ...] = (
    Phase("intake", "Intake and plan", (("orchestrator",),)),
    Phase("research", "Research", (("research", "regulatory-intelligence", "market-analysis"),), batchable=True),
    Phase("discovery", "Discovery", (("tool-discovery",), ("component-mapper",)), batchable=True),
    Phase("capability", "Capability design", (("skills-discovery",), ("role-definition",)), batchable=True),
    Phase("quality", "Quality (QA and Critique)", (("qa", "critique"),), "review-loop"),
    Phase("validation", "Validation", (("compliance-validator", "confidence-analyzer"),), "confidence-gate"),
    Phase("publication", "Publication and learning", (("orchestrator",), ("learning-curator",)), "publish"),
)

PHASES_BY_ID: dict[str, Phase] = {phase.id: phase for phase in PHASES}


def review_step(round_no: int, agent: str) -> str:
    return f"quality.r{round_no}.{agent}"


def revision_step(round_no: int, owner: str) -> str:
    return f"quality.r{round_no}.revise.{owner}"
