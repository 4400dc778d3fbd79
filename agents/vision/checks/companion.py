"""`companion` rules: changing A requires changing B in the same change."""

from __future__ import annotations

from collections.abc import Iterator

from agents.vision.checks.base import Scope, finding
from agents.vision.findings import Finding
from agents.vision.globs import matches_any
from agents.vision.policy import CompanionRule


def check_companion(rule: CompanionRule, scope: Scope) -> Iterator[Finding]:
    triggers = [file.path for file in scope.files_for(rule)]
    if not triggers:
        return
    # Every changed path counts as a companion, even ones the config ignores or the
    # file cap left out: the question is only whether the change touches them.
    changed = [f.path for f in scope.diff.files] + [f.old_path for f in scope.diff.files if f.old_path]
    if any(matches_any(path, rule.requires) for path in [*changed, *scope.diff.omitted]):
        return
    shown = ", ".join(f"`{path}`" for path in triggers[:3]) + (
        f" and {len(triggers) - 3} more" if len(triggers) > 3 else ""
    )
    wanted = ", ".join(f"`{glob}`" for glob in rule.requires)
    yield finding(rule, triggers[0], detail=f"{shown} changed, but nothing matching {wanted}", content="companion")
