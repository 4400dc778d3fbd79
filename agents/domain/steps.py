"""A committed agent step of a CoE job: its context version (`<job>:<step>`) and its row in the decision ledger."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agents.context.client_values import Context
from agents.ledger import Entry


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
        data = context.data
        spend = data.get("spend") or {}
        package = data.get("package") or {}
        return cls(
            data["step"],
            context.agent,
            data["phase"],
            context.version,
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
