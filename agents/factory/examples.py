"""`waooaw agents test`: a spec's golden examples against a scripted model, no network.

For each example: the event from its payload (or payload file), the reads as the payload
tells them with the example's `given` on top — a read the event skips (its `when` is false)
empty as in production, and a `given` for one a failure —, the deterministic rules as in production,
and `answer` as what the model answers when no rule settles it. The intents produced are
compared with `expect`: each expected intent matches one produced intent of its kind (by
`contains` or `equals` on its natural field, or on `field`), in any order, and nothing else
may be produced; `rung` names the rung the answer must come from.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any

from agents.events import Event
from agents.factory.agent import wakes
from agents.factory.checks import INTENT_FIELDS, example_path
from agents.factory.reads import payload_reads, skipped_reads
from agents.factory.run import Decided, Run, respond
from agents.factory.spec import AgentSpec, Example, Expect
from agents.outputs import Output


@dataclass
class ExampleResult:
    spec: AgentSpec
    example: Example
    run: Run | None
    produced: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def report(self) -> str:
        """What failed, and a diff of the expected and produced intents (one line each; a matched
        expectation is shown as the intent it matched, so only what differs stands out)."""
        lines = [f"  {failure}" for failure in self.failures]
        wanted = [expect for expect in self.example.expect if expect.kind is not None]
        produced = [_summary(item) for item in self.produced]
        expected, used = [], set()
        for expect in wanted:
            match = next((i for i, item in enumerate(self.produced) if i not in used and matches(expect, item)), None)
            if match is None:
                expected.append(_expected(expect))
            else:
                used.add(match)
                expected.append(produced[match])
        diff = difflib.unified_diff(expected, produced, "expected", "produced", lineterm="", n=99)
        lines += [f"  {line}" for line in diff]
        if self.run is not None:
            lines += [f"  refused: outputs[{r.output}] {r.kind}: {r.reason}" for r in self.run.intents.refused]
            lines += [f"  problem: {problem}" for problem in self.run.problems]
        return "\n".join(lines)


def example_event(spec: AgentSpec, example: Example, index: int) -> Event:
    if example.event.payload is not None:
        payload = dict(example.event.payload)
    else:
        assert spec.source is not None and example.event.payload_file is not None  # the checks hold it
        payload = json.loads(example_path(spec.source, example.event.payload_file).read_text())
    if example.event.action is not None:
        payload["action"] = example.event.action
    return Event.from_payload(f"example:{spec.name}:{index}", example.event.name, payload)


async def run_example(spec: AgentSpec, example: Example, index: int) -> ExampleResult:
    event = example_event(spec, example, index)
    if not wakes(spec, event):
        return ExampleResult(spec, example, None, failures=[f"{spec.name} does not wake on {event.kind}"])
    skipped = skipped_reads(spec, event)
    reads = {**payload_reads(spec, event), **example.given, **skipped}

    async def scripted(prompt: str, ruled: dict[str, Any] | None) -> Decided:
        if ruled is not None:
            return Decided("deterministic", ruled)
        if example.answer is not None:
            return Decided("llm", example.answer)
        return Decided("skipped", None, "the example scripts no answer")

    run = await respond(spec, event, reads, scripted)
    produced = [describe(output) for output in run.intents.outputs]
    result = ExampleResult(spec, example, run, produced)
    for name in example.given:
        if name in skipped:
            result.failures.append(f"`given.{name}` stands in for a read this event skips: its `when` is false")
    for expect in example.expect:
        if expect.rung is not None and expect.rung != run.rung:
            result.failures.append(f"the answer came from the {run.rung} rung, not the {expect.rung} one")
    wanted = [expect for expect in example.expect if expect.kind is not None]
    if _assign(wanted, produced) is None:
        result.failures.append(
            f"expected {len(wanted)} intent(s), produced {len(produced)}: they do not match one to one"
        )
    return result


async def run_examples(spec: AgentSpec) -> list[ExampleResult]:
    return [await run_example(spec, example, index) for index, example in enumerate(spec.examples)]


# ------------------------------------------------------------------ comparing


def describe(output: Output) -> dict[str, Any]:
    """An intent as `expect` sees it: its kind and the fields a spec can set."""
    if type(output).__name__ == "Message":  # an agent message's `kind` is the message's (request, handoff …)
        return {
            "kind": "message",
            "body": getattr(output, "body", None),
            "to": getattr(output, "to", None),
            "message_kind": output.kind,
        }
    described: dict[str, Any] = {"kind": output.kind}
    for name in INTENT_FIELDS.get(output.kind, ()):
        value = getattr(output, name, None)
        described[name] = list(value) if isinstance(value, tuple) else value
    return described


def matches(expect: Expect, produced: dict[str, Any]) -> bool:
    if expect.kind is None or expect.kind != produced["kind"]:
        return False
    fields = [expect.field] if expect.field is not None else _natural(expect.kind)
    values = [produced.get(name) for name in fields]
    if "equals" in expect.model_fields_set and not _equal(values[0], expect.equals):
        return False
    needles = [expect.contains] if isinstance(expect.contains, str) else expect.contains or []
    return all(any(_contains(value, needle) for value in values) for needle in needles)


def _natural(kind: str) -> list[str]:
    """Where `contains` looks without a `field`: an issue's title and body, a PR's files, title and body."""
    if kind in ("issue", "pull_request"):
        return list(INTENT_FIELDS[kind][:2]) if kind == "issue" else list(INTENT_FIELDS[kind][:3])
    return [INTENT_FIELDS[kind][0]] if kind in INTENT_FIELDS else []


def _contains(value: Any, needle: str) -> bool:
    if isinstance(value, str):
        return needle in value
    if isinstance(value, dict):
        return any(needle in path or needle in text for path, text in value.items())
    if isinstance(value, list):
        return needle in value
    return False


def _equal(value: Any, wanted: Any) -> bool:
    if isinstance(value, list) and isinstance(wanted, list):
        return sorted(map(str, value)) == sorted(map(str, wanted))
    return bool(value == wanted)


def _assign(wanted: list[Expect], produced: list[dict[str, Any]]) -> list[int] | None:
    """One produced intent for each expectation, every produced intent used: the indexes, or None."""
    if len(wanted) != len(produced):
        return None

    def place(position: int, used: list[int]) -> list[int] | None:
        if position == len(wanted):
            return used
        for index, candidate in enumerate(produced):
            if index not in used and matches(wanted[position], candidate):
                found = place(position + 1, [*used, index])
                if found is not None:
                    return found
        return None

    return place(0, [])


def _expected(expect: Expect) -> str:
    field = expect.field or "/".join(_natural(expect.kind or ""))
    checks = []
    if expect.contains is not None:
        checks.append(f"contains {_short(expect.contains)}")
    if "equals" in expect.model_fields_set:
        checks.append(f"equals {_short(expect.equals)}")
    return f"{expect.kind} {field} {' and '.join(checks) or 'is produced'}"


def _summary(produced: dict[str, Any]) -> str:
    fields = " ".join(f"{name}={_short(value)}" for name, value in produced.items() if name != "kind")
    return f"{produced['kind']} {fields}"


def _short(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"
