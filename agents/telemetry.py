"""What the decision ledger tells Prometheus and the trace: decisions by agent and rung, model
tokens and cost, and one span per decision.

Counted where a row is written (agents/ledger.py), so every decision counts once however it
was made — the ladder, WowVision's rules, a CoE step from a runner. Labels are agent, rung,
status and the reason a decision was skipped; never a repository or anything from one.
Spans go to whatever tracer provider the process set up (bot/tracing.py), or nowhere.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from opentelemetry import trace
from prometheus_client import Counter

if TYPE_CHECKING:
    from agents.ledger import Entry

decisions = Counter(
    "waooaw_decisions_total", "Decisions by agent, rung and status", ["agent", "rung", "status", "reason"]
)
model_tokens = Counter("waooaw_model_tokens_total", "Model tokens by agent and direction", ["agent", "direction"])
model_cost = Counter("waooaw_model_cost_usd_total", "Model spend in USD by agent", ["agent"])
# Why a decision was skipped or failed, as the ladder names it (agents/llm.py's LLMError reasons).
_REASONS = frozenset(
    {"budget", "breaker_open", "llm_not_configured", "malformed", "unavailable", "rejected", "batch_pending"}
)


def recorded(entries: Iterable[Entry]) -> None:
    """Count new ledger rows and draw each as a span of the current trace, as long as it took."""
    tracer = trace.get_tracer("waooaw")
    now = time.time_ns()
    for entry in entries:
        reason = str(entry.outcome.get("reason", "")) if entry.status != "settled" else ""
        reason = reason if reason in _REASONS or not reason else "other"
        decisions.labels(entry.agent, entry.rung, entry.status, reason).inc()
        if entry.tokens_in or entry.tokens_out:
            model_tokens.labels(entry.agent, "in").inc(entry.tokens_in)
            model_tokens.labels(entry.agent, "out").inc(entry.tokens_out)
        if entry.cost_usd:
            model_cost.labels(entry.agent).inc(entry.cost_usd)
        span = tracer.start_span("waooaw.decision", start_time=now - int(entry.latency_ms * 1e6))
        span.set_attributes(
            {
                "waooaw.agent": entry.agent,
                "waooaw.rule": entry.rule,
                "waooaw.rung": entry.rung,
                "waooaw.status": entry.status,
                "waooaw.tokens_in": entry.tokens_in,
                "waooaw.tokens_out": entry.tokens_out,
                "waooaw.cost_usd": entry.cost_usd,
            }
        )
        span.end(end_time=now)
