"""A review as text (a terminal), Markdown (a PR comment), GitHub workflow commands (an
Actions log) or JSON-ready data. SARIF is `agents.vision.sarif`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from agents import markdown as md
from agents.vision.engine import ReviewResult
from agents.vision.findings import Finding, Skipped, Summary

_COLOURS = {"error": "\x1b[1;31m", "warning": "\x1b[33m", "notice": "\x1b[36m", "dim": "\x1b[2m", "bold": "\x1b[1m"}
_RESET = "\x1b[0m"
# (text, style) -> the text, in that style's colours when the output is a terminal
Paint = Callable[[str, str], str]
_MARKDOWN_SEVERITY = {"error": "🔴 error", "warning": "🟠 warning", "notice": "🔵 notice"}
# What GitHub's runner decodes in a workflow command: the message, and its properties too.
_COMMAND_DATA = str.maketrans({"%": "%25", "\r": "%0D", "\n": "%0A"})
_COMMAND_PROPERTY = str.maketrans({"%": "%25", "\r": "%0D", "\n": "%0A", ":": "%3A", ",": "%2C"})
_LOCATION_WIDTH = 48
_SKIPPED_SHOWN = 10


def location(path: str | None, line: int | None, end_line: int | None = None) -> str:
    """`path:12`, `path:12-14`, `path`, or `(change)` for what concerns the change as a whole."""
    if path is None:
        return "(change)"
    if line is None:
        return path
    return f"{path}:{line}" if end_line in (None, line) else f"{path}:{line}-{end_line}"


def to_json(result: ReviewResult, **summary_extra: Any) -> dict[str, Any]:
    return {
        "findings": [finding.to_json() for finding in result.findings],
        "skipped": [skipped.to_json() for skipped in result.skipped],
        "summary": {**result.summary.to_json(), **summary_extra},
    }


def render_text(result: ReviewResult, *, color: bool = False, range_label: str = "") -> str:
    """Findings grouped by file — `path:line  severity  rule  message`, the hint below —
    then what was skipped, then one line of totals."""

    def paint(text: str, style: str) -> str:
        return f"{_COLOURS[style]}{text}{_RESET}" if color else text

    out: list[str] = []
    findings = result.findings
    loc_width = min(_LOCATION_WIDTH, max((len(_loc(f)) for f in findings), default=0))
    rule_width = max((len(f.rule) for f in findings), default=0)
    previous: str | None = "\0"
    for found in findings:
        if found.path != previous and previous != "\0":
            out.append("")
        previous = found.path
        where = _loc(found)
        severity = paint(f"{found.severity:<7}", found.severity)
        rule = paint(found.rule.ljust(rule_width), "dim")
        out.append(f"{paint(where.ljust(loc_width), 'bold')}  {severity}  {rule}  {found.message}")
        if found.hint:
            out.append(f"    {paint('↳ ' + found.hint, 'dim')}")
    if result.skipped:
        if out:
            out.append("")
        out += _text_skipped(result.skipped, paint)
    if out:
        out.append("")
    out.append(_totals(result, paint, range_label))
    return "\n".join(out) + "\n"


def _loc(found: Finding) -> str:
    return location(found.path, found.line, found.end_line)


def _text_skipped(skipped: Sequence[Skipped], paint: Paint) -> list[str]:
    lines = [paint(f"skipped ({len(skipped)}), not passed:", "bold")]
    shown = skipped[:_SKIPPED_SHOWN]
    places = [location(item.path, item.line, item.end_line) for item in shown]
    width = min(_LOCATION_WIDTH, max(len(place) for place in places))
    for item, place in zip(shown, places, strict=True):
        rule = f"{item.rule}  " if item.rule else ""
        lines.append(f"  {place.ljust(width)}  {paint(rule, 'dim')}{item.reason}")
    if len(skipped) > _SKIPPED_SHOWN:
        lines.append(f"  … and {len(skipped) - _SKIPPED_SHOWN} more (--format json lists them all)")
    return lines


def counts(summary: Summary) -> str:
    """`1 error, 3 notices`: each severity found, counted."""
    return ", ".join(
        md.plural(count, word)
        for count, word in ((summary.errors, "error"), (summary.warnings, "warning"), (summary.notices, "notice"))
        if count
    )


def _totals(result: ReviewResult, paint: Paint, range_label: str) -> str:
    summary = result.summary
    reviewed = f"{md.plural(summary.files_reviewed, 'file')} reviewed with {md.plural(summary.rules, 'rule')}"
    tail = f" · {range_label}" if range_label else ""
    if not summary.findings:
        return paint("✔ no findings", "bold") + f" · {reviewed}{tail}"
    mark = paint("✖", "error") if summary.errors else paint("!", "warning")
    return f"{mark} {counts(summary)} · {reviewed}{tail}"


def render_review_markdown(result: ReviewResult, *, title: str = "WowVision") -> str:
    """A Markdown report: a table of findings, what was skipped, the totals.

    Paths, rules, messages and reasons come from the change and the repository's packs: all
    go through agents.markdown."""
    summary = result.summary
    if summary.findings:
        lines = [f"### {title}: {counts(summary)}", "", "| | where | rule | finding |", "|---|---|---|---|"]
        for found in result.findings:
            text = md.prose(found.message) + (f"<br>_{md.prose(found.hint)}_" if found.hint else "")
            lines.append(
                f"| {_MARKDOWN_SEVERITY[found.severity]} | {md.code(_loc(found))} | {md.code(found.rule)} | {text} |"
            )
    else:
        lines = [f"### {title}: no findings"]
    lines += _llm_skipped(result.skipped)
    if result.skipped:
        lines += ["", f"<details><summary>Skipped ({len(result.skipped)}) — not checked, not passed</summary>", ""]
        for item in result.skipped:
            what = md.code(location(item.path, item.line, item.end_line)) if item.path else "the change"
            rule = f" {md.code(item.rule)}" if item.rule else ""
            lines.append(f"- {what}{rule}: {md.prose(item.reason)}")
        lines += ["", "</details>"]
    decisions = ", ".join(f"{count} {rung}" for rung, count in summary.decisions.items())
    lines += [
        "",
        f"<sub>{md.plural(summary.files_reviewed, 'file')} reviewed with {md.plural(summary.rules, 'rule')}"
        f" · decisions: {decisions}</sub>",
    ]
    return "\n".join(lines) + "\n"


def _llm_skipped(skipped: Sequence[Skipped]) -> list[str]:
    """One line, outside the folded list, when the model judged none of some items, and why: a spent
    budget or an open breaker falls back to the rules, and the reader must know what they missed."""
    items = [item for item in skipped if item.kind == "llm"]
    if not items:
        return []
    why = dict.fromkeys(
        item.reason.partition(": ")[0] if item.reason.startswith("LLM rung skipped") else item.reason for item in items
    )
    return [
        "",
        f"**{md.plural(len(items), 'item')} the model did not judge** (not checked, not passed): "
        + "; ".join(md.prose(reason) for reason in why)
        + ".",
    ]


def render_github(result: ReviewResult, *, range_label: str = "") -> str:
    """One workflow command per finding — `::error file=F,line=L,endLine=E,title=RULE::message` —
    so that an Actions job annotates the diff with them, then the totals as a plain line.

    The runner reads the command's properties up to `::` and splits them at `,`: paths,
    rules and messages are escaped as it requires, so no text of the change can end a
    property, add one, or start another command on a line of its own."""
    lines = []
    for found in result.findings:
        properties = {"file": found.path, "line": found.line, "endLine": found.end_line, "title": found.rule}
        given = ",".join(
            f"{key}={str(value).translate(_COMMAND_PROPERTY)}" for key, value in properties.items() if value
        )
        message = found.message + (f"\n↳ {found.hint}" if found.hint else "")
        lines.append(f"::{found.severity} {given}::{message.translate(_COMMAND_DATA)}")
    lines.append(_totals(result, lambda text, style: text, range_label))
    return "\n".join(lines) + "\n"
