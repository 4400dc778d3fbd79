"""The WowVision engine: a diff, the head's files, a config and packs in; a review out.

`review()` is deterministic, fast and offline: it runs every rule of every kind but
`llm`. For `llm` rules it settles what it can without a model — a hunk that no
added line of the rule's `trigger` touches, a hunk a deterministic finding already
sits in — and leaves the rest in `ReviewResult.pending`, each also reported as
skipped (LLM_NOT_WIRED: "needs Claude…"), never as passed.

The LLM rung plugs in through one seam, `LlmRung`: it receives the pending items and
returns an `LlmOutcome`; `ReviewResult.settle(outcome)` folds it into the review.

    result = review(diff, files_at_head, config, packs, files_at_base=files_at_base)
    result = await complete(result, ladder)        # when a ladder is available
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from agents.vision.checks import CHECKS, Scope
from agents.vision.checks.base import FilesAt
from agents.vision.config import RepoConfig
from agents.vision.diff import MAX_FILES, Anchor, Diff, FileDiff, Hunk, anchor
from agents.vision.findings import LLM_NOT_WIRED, Finding, Skipped, Summary
from agents.vision.globs import matches_any
from agents.vision.policy import LlmRule, Pack

SEVERITY_ORDER = {"error": 0, "warning": 1, "notice": 2}


@dataclass(frozen=True)
class LlmItem:
    """One `llm` rule on one window of a hunk that no deterministic rule settled: a
    question for the model. `start`..`end` are new-side lines inside `hunk`."""

    rule: LlmRule
    path: str
    hunk: Hunk
    start: int
    end: int

    @property
    def text(self) -> str:
        """What the model reads: the window of the hunk, as unified-diff text."""
        return self.hunk.excerpt(self.start, self.end)

    @property
    def key(self) -> str:
        """What a cache keys the answer on: the rule's version and the text judged."""
        return f"{self.rule.id}@{self.rule.digest}:{self.path}:{self.text}"


@dataclass(frozen=True)
class LlmOutcome:
    """What the LLM rung made of the pending items."""

    findings: tuple[Finding, ...] = ()  # rung "cached" or "llm", lines inside the item's hunk
    skipped: tuple[Skipped, ...] = ()  # items it could not decide (no key, budget spent, breaker open)
    decisions: dict[str, int] = field(default_factory=dict)  # {"cached": n, "llm": m}


class LlmRung(Protocol):
    """The decision ladder's rungs 2 and 3 (cache, then Claude), as the engine sees them."""

    async def settle(self, items: Sequence[LlmItem]) -> LlmOutcome: ...


@dataclass(frozen=True)
class ReviewResult:
    findings: tuple[Finding, ...]
    skipped: tuple[Skipped, ...]
    pending: tuple[LlmItem, ...]
    summary: Summary

    @property
    def failed(self) -> bool:
        """An error-level finding exists: the check fails, the CLI exits 1."""
        return self.summary.errors > 0

    def settle(self, outcome: LlmOutcome) -> ReviewResult:
        """This review with the LLM rung's answers in place of its pending items."""
        findings = _sorted([*self.findings, *outcome.findings])
        skipped = tuple(s for s in self.skipped if s.kind != "llm") + tuple(outcome.skipped)
        decisions = dict(self.summary.decisions)
        decisions.pop("unsettled", None)
        for rung, count in outcome.decisions.items():
            decisions[rung] = decisions.get(rung, 0) + count
        decisions["unsettled"] = sum(1 for s in outcome.skipped if s.kind == "llm")
        summary = replace(self.summary, decisions=decisions, **_counts(findings))
        return ReviewResult(findings, skipped, (), summary)


async def complete(result: ReviewResult, rung: LlmRung) -> ReviewResult:
    """Hand the pending items to the LLM rung and fold its answers in."""
    if not result.pending:
        return result
    return result.settle(await rung.settle(result.pending))


def review(
    diff: Diff,
    files_at_head: FilesAt,
    config: RepoConfig,
    packs: Sequence[Pack],
    *,
    files_at_base: FilesAt | None = None,
) -> ReviewResult:
    """Review `diff` with the rules of `packs`, as `config` adjusts them.

    `files_at_head(path)` returns a file's bytes at the head commit (None when it is
    not available); it is called only for rules that need whole files (layering,
    file size, model schemas). `files_at_base(path)` does the same at the base commit,
    so that those rules report what the change did — a file it made large, a schema it
    changed — not what was already there; without it every file counts as new. `packs`
    are the packs to apply — `agents.vision.config.resolve_packs` loads the ones a
    config names.
    """
    rules = config.apply([rule for pack in packs for rule in pack.rules])
    in_review = tuple(f for f in diff.files if not matches_any(f.path, config.ignore))
    scope = Scope(
        diff=diff,
        files=in_review,
        files_at_head=files_at_head,
        files_at_base=files_at_base,
        fixtures=tuple(config.fixtures),
    )
    skipped: list[Skipped] = [*_skipped_files(diff, in_review)]
    findings: list[Finding] = []
    decisions = {"deterministic": 0}
    llm_rules: list[LlmRule] = []
    for rule in rules:
        if isinstance(rule, LlmRule):
            llm_rules.append(rule)
            continue
        findings.extend(CHECKS[rule.kind](rule, scope))
        decisions["deterministic"] += max(1, len(scope.files_for(rule)))
    pending, settled = _llm_items(llm_rules, scope, findings)
    decisions["deterministic"] += settled
    decisions["unsettled"] = len(pending)
    skipped += scope.skipped
    skipped += [
        Skipped(kind="llm", rule=item.rule.id, path=item.path, line=item.start, end_line=item.end, reason=LLM_NOT_WIRED)
        for item in pending
    ]
    ordered = _sorted(findings)
    summary = Summary(
        files_changed=diff.changed_files,
        files_reviewed=sum(1 for f in in_review if not f.is_removed),
        files_skipped=sum(1 for s in skipped if s.kind == "file"),
        rules=len(rules),
        decisions=decisions,
        **_counts(ordered),
    )
    return ReviewResult(ordered, tuple(skipped), tuple(pending), summary)


def inline_anchor(diff: Diff, finding: Finding) -> Anchor | None:
    """Where a finding can be commented on inline, or None: then it belongs in the summary."""
    if finding.path is None or finding.line is None:
        return None
    end = finding.end_line or finding.line
    return anchor(diff, finding.path, end, finding.line if end != finding.line else None)


def _skipped_files(diff: Diff, in_review: Sequence[FileDiff]) -> list[Skipped]:
    out = []
    for file in in_review:
        if file.is_binary and not file.is_removed:
            out.append(Skipped(kind="file", path=file.path, reason="binary file: line rules do not apply"))
        elif file.truncated:
            out.append(Skipped(kind="file", path=file.path, reason="GitHub sent no patch (diff too large to show)"))
    out += [Skipped(kind="file", path=path, reason=f"beyond the first {MAX_FILES} files") for path in diff.omitted]
    if diff.unlisted:
        out.append(Skipped(kind="file", reason=f"{diff.unlisted} more files GitHub does not list (over {MAX_FILES})"))
    return out


# A window of a hunk sent to the model: the lines around each trigger match, or
# slices of at most WINDOW_LINES lines when the rule has no trigger.
TRIGGER_CONTEXT = 15
WINDOW_LINES = 150


def _windows(rule: LlmRule, hunk: Hunk) -> list[tuple[int, int]]:
    trigger = rule.compiled_trigger
    if trigger is None:
        return [
            (start, min(start + WINDOW_LINES - 1, hunk.new_end))
            for start in range(hunk.new_start, hunk.new_end + 1, WINDOW_LINES)
        ]
    windows: list[tuple[int, int]] = []
    for line in hunk.added:
        if not trigger.search(line.text):
            continue
        start, end = (
            max(hunk.new_start, line.number - TRIGGER_CONTEXT),
            min(hunk.new_end, line.number + TRIGGER_CONTEXT),
        )
        if windows and start <= windows[-1][1] + 1:
            windows[-1] = (windows[-1][0], end)
        else:
            windows.append((start, end))
    return windows


def _llm_items(rules: Sequence[LlmRule], scope: Scope, findings: Sequence[Finding]) -> tuple[list[LlmItem], int]:
    """The questions no deterministic rule settled, and how many were settled without a model."""
    pending: list[LlmItem] = []
    settled = 0
    spans: dict[str, list[tuple[int, int]]] = {}
    for found in findings:
        if found.path is not None and found.line is not None:
            spans.setdefault(found.path, []).append((found.line, found.end_line or found.line))
    for rule in rules:
        for file in scope.text_files_for(rule):
            for hunk in file.hunks:
                if not hunk.added:
                    continue
                windows = _windows(rule, hunk)
                if not windows:
                    settled += 1  # no line of the hunk matches the rule's trigger: it does not apply
                for start, end in windows:
                    if any(a <= end and b >= start for a, b in spans.get(file.path, ())):
                        settled += 1  # a deterministic finding already speaks for these lines
                    else:
                        pending.append(LlmItem(rule, file.path, hunk, start, end))
    return pending, settled


def _sorted(findings: Sequence[Finding]) -> tuple[Finding, ...]:
    return tuple(
        sorted(findings, key=lambda f: (f.path is None, f.path or "", f.line or 0, SEVERITY_ORDER[f.severity], f.rule))
    )


def _counts(findings: Sequence[Finding]) -> dict[str, int]:
    return {
        "errors": sum(1 for f in findings if f.severity == "error"),
        "warnings": sum(1 for f in findings if f.severity == "warning"),
        "notices": sum(1 for f in findings if f.severity == "notice"),
    }
