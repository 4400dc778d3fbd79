"""What a review produces: findings, skipped items, and a summary."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

from agents.vision.policy import Severity

FindingRung = Literal["deterministic", "cached", "llm"]
LLM_NOT_WIRED = "needs Claude: a local check does not ask it"  # the app asks, on the decision ladder


def fingerprint(rule: str, path: str | None, content: str) -> str:
    """Stable identity of a finding across pushes: rule, path and the line's text with
    whitespace normalised (not its number, which moves when lines are added above)."""
    normalised = " ".join(content.split())
    return hashlib.sha256(f"{rule}\0{path or ''}\0{normalised}".encode()).hexdigest()[:20]


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    severity: Severity
    path: str | None  # None: about the change as a whole (its size, say)
    line: int | None  # first line on the new side; None: about the whole file
    end_line: int | None
    message: str
    hint: str
    fingerprint: str
    rung: FindingRung = "deterministic"

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "path": self.path,
            "line": self.line,
            "end_line": self.end_line,
            "message": self.message,
            "hint": self.hint,
            "rung": self.rung,
        }


@dataclass(frozen=True, slots=True)
class Skipped:
    """Something the review did not decide, and why: never silently passed."""

    kind: Literal["llm", "file", "rule"]
    reason: str
    rule: str | None = None
    path: str | None = None
    line: int | None = None
    end_line: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "rule": self.rule,
            "path": self.path,
            "line": self.line,
            "end_line": self.end_line,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Summary:
    files_changed: int
    files_reviewed: int
    files_skipped: int
    rules: int
    errors: int
    warnings: int
    notices: int
    # Decisions by rung: "deterministic", "cached", "llm", and "unsettled" (llm items
    # nothing could decide — reported as skipped).
    decisions: dict[str, int] = field(default_factory=dict)

    @property
    def findings(self) -> int:
        return self.errors + self.warnings + self.notices

    @property
    def conclusion(self) -> Literal["success", "failure"]:
        return "failure" if self.errors else "success"

    def to_json(self) -> dict[str, Any]:
        return {
            "conclusion": self.conclusion,
            "findings": self.findings,
            "errors": self.errors,
            "warnings": self.warnings,
            "notices": self.notices,
            "files_changed": self.files_changed,
            "files_reviewed": self.files_reviewed,
            "files_skipped": self.files_skipped,
            "rules": self.rules,
            "decisions": dict(self.decisions),
        }
