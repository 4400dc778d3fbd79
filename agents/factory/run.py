"""One run of a spec on one event, whoever answers: the ladder in production, a script in `agents test`.

    run = await respond(spec, event, reads, decide)

1. The template variables: `event`, `payload`, `repo` and the reads.
2. The first deterministic rule whose `when` holds gives the answer; otherwise `decide` asks
   (the ladder: the cache, then the model, inside the run's budget).
3. No answer (no API key, budget spent, breaker open, a malformed reply) → the spec's
   `fallback` when it declares one, else nothing at all.
4. The answer is checked against the spec's `answer` schema; one that does not fit makes
   nothing. Then its intents are built (agents/factory/intents.py), capped and checked.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from jsonschema import Draft202012Validator

from agents.commands import SlashCommand, find_command
from agents.events import Event
from agents.factory import templates
from agents.factory.intents import Intents, Refusal, build_intents
from agents.factory.spec import AgentSpec, Command

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Decided:
    """What the decider made of the question: the rung it settled on, and the answer (None: none)."""

    rung: str  # deterministic, cached, llm, skipped
    answer: dict[str, Any] | None
    reason: str | None = None


# (the rendered instructions, the deterministic rule's answer or None) → the decision
Decide = Callable[[str, dict[str, Any] | None], Awaitable[Decided]]


@dataclass
class Run:
    rung: str  # deterministic, cached, llm, skipped, fallback
    answer: dict[str, Any] | None
    intents: Intents = field(default_factory=Intents)
    reason: str | None = None
    problems: list[str] = field(default_factory=list)  # rules that failed, an answer that does not fit


def commanded(command: Command, event: Event) -> SlashCommand | None:
    """The spec's command in a new comment of the event, if it is there."""
    if event.kind != "issue_comment.created":
        return None
    prefix, _, verb = command.name.removeprefix("/").partition(" ")
    return find_command(event.comment_body, prefix, (verb,) if verb else None)


def event_values(spec: AgentSpec, event: Event) -> dict[str, Any]:
    """The template variables every spec has."""
    # The spec's command as the platform finds it (a line of a new comment, any line): a spec
    # matching the comment's text itself would see fewer commands than wake it.
    found = commanded(spec.command, event) if spec.command is not None else None
    return {
        "event": {
            "name": event.name,
            "action": event.action,
            "kind": event.kind,
            "repo": event.repo,
            "sender": event.sender_login,
            "installation": event.installation_id,
            "command": {"args": list(found.args)} if found is not None else None,
        },
        "payload": event.payload,
        "repo": event.repo,
    }


def answer_problems(spec: AgentSpec, answer: Any) -> list[str]:
    """Why an answer does not fit the spec's answer schema (empty: it fits)."""
    errors = Draft202012Validator(spec.answer).iter_errors(answer)
    return [
        f"answer{''.join(f'[{p}]' if isinstance(p, int) else f'.{p}' for p in error.path)}: {error.message}"
        for error in sorted(errors, key=lambda e: [str(p) for p in e.path])
    ]


def rule_answer(spec: AgentSpec, values: Mapping[str, Any], problems: list[str]) -> dict[str, Any] | None:
    """The answer of the first deterministic rule that holds; a rule that fails to evaluate does not hold."""
    for index, rule in enumerate(spec.deterministic):
        try:
            if templates.evaluate(rule.when, values):
                answer = templates.render_data(rule.answer, values)
                return answer if isinstance(answer, dict) else None
        except Exception as exc:  # noqa: BLE001 — a rule that cannot be evaluated on this event is one that does not hold
            problems.append(f"deterministic[{index}] failed: {type(exc).__name__}: {exc}")
    return None


async def respond(spec: AgentSpec, event: Event, reads: Mapping[str, Any], decide: Decide) -> Run:
    values = {**event_values(spec, event), **reads}
    problems: list[str] = []
    ruled = rule_answer(spec, values, problems)
    try:
        prompt = templates.render(spec.instructions, values, "prompt") if ruled is None else ""
    except Exception as exc:  # noqa: BLE001 — instructions this event cannot fill (no issue, say): the model is not asked
        problems.append(f"instructions failed: {type(exc).__name__}: {exc}")
        decided = Decided("skipped", None, "unrenderable")
    else:
        decided = await decide(prompt, ruled)
    rung, answer = decided.rung, decided.answer
    if answer is None and spec.fallback is not None:
        rung, answer = "fallback", templates.render_data(spec.fallback, values)
    if answer is None:
        return Run(rung, None, reason=decided.reason, problems=problems)
    misfit = answer_problems(spec, answer)
    if misfit:
        refused = [Refusal(-1, "answer", f"the answer does not fit the schema: {'; '.join(misfit)}")]
        return Run(rung, answer, Intents(refused=refused), decided.reason, problems + misfit)
    # A property the schema declares but the answer leaves out reads as None (a `when` is false), not as an error.
    declared = {name: None for name in spec.answer.get("properties", {})}
    intents = build_intents(spec, event, {**values, "answer": {**declared, **answer}})
    return Run(rung, answer, intents, decided.reason, problems)
