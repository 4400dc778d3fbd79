"""A committed agent step of a CoE job: its context version (`<job>:<step>`) and its row in the decision ledger."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agents.context.client_values import Context
from agents.domain.roster import DomainAgent, readers_of
from agents.ledger import Entry
from agents.llm import LLMAnswer


@dataclass(frozen=True)
class Step:
    """One committed agent step, as the store holds it."""

    key: str
    agent: str
    phase: str
    version: int
    deliverable: dict[str, Any]
    open_questions: list[str]
    model: str | None
    input_hash: str
    cost_usd: float
    tokens_in: int
    tokens_out: int
    model_calls: int
    latency_ms: float
    batched: bool

    @classmethod
    def from_context(cls, context: Context) -> Step:
        return cls.from_data(context.agent, context.version, context.data)

    @classmethod
    def from_data(cls, agent: str, version: int, data: dict[str, Any]) -> Step:
        """The step from its context's contents, as `step_data` writes them."""
        spend = data.get("spend") or {}
        package = data.get("package") or {}
        return cls(
            data["step"],
            agent,
            data["phase"],
            version,
            package.get("deliverable") or {},
            list(package.get("open_questions") or []),
            spend.get("model"),
            data.get("input_hash", ""),
            float(spend.get("cost_usd", 0.0)),
            int(spend.get("tokens_in", 0)),
            int(spend.get("tokens_out", 0)),
            int(spend.get("model_calls", 0)),
            float(spend.get("latency_ms", 0.0)),
            bool(spend.get("batch", False)),
        )

    def entry(self) -> Entry:
        """The step in the decision ledger, keyed by the step."""
        return Entry(
            self.agent,
            self.key,
            "llm",
            "settled",
            key=self.key,
            input_hash=self.input_hash or None,
            outcome={"status": "settled", "model": self.model, "batch": self.batched},
            latency_ms=self.latency_ms,
            tokens_in=self.tokens_in,
            tokens_out=self.tokens_out,
            cost_usd=self.cost_usd,
            model_calls=self.model_calls,
        )


def step_scope(job_id: str, step: str) -> str:
    return f"{job_id}:{step}"


def step_data(
    job_id: str,
    phase: str,
    key: str,
    agent: DomainAgent,
    prompt: str,
    answer: LLMAnswer[Any],
    current: Mapping[str, Step],
    *,
    latency_ms: float,
    batched: bool,
) -> dict[str, Any]:
    """A step's context: what the model was shown, its answer as a handoff package, and what it cost."""
    digest = hashlib.sha256(f"{agent.system}\x00{prompt}".encode()).hexdigest()
    deliverable = answer.data.model_dump(mode="json")
    open_questions = deliverable.pop("open_questions", [])
    return {
        "step": key,
        "phase": phase,
        "input_hash": digest,
        "prompt": prompt,  # what the model was shown (its system prompt is the agent's, in the roster)
        "reads": {name: current[name].version for name in agent.reads if name in current},
        "package": {
            "deliverable": deliverable,
            "open_questions": open_questions,
            "provenance": {
                "job": job_id,
                "agent": agent.id,
                "phase": phase,
                "step": key,
                "model": answer.model,
                "input_hash": digest,
            },
            "to_agents": readers_of(agent.id),
        },
        "spend": {
            "model": answer.model,
            "cost_usd": answer.cost_usd,
            "tokens_in": answer.usage.prompt_tokens,
            "tokens_out": answer.usage.output_tokens,
            "model_calls": answer.attempts,
            "latency_ms": round(latency_ms, 1),
            "batch": batched,
        },
    }
