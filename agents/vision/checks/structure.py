"""`placement` and `naming` rules: where files live and what they are called.

Both look only at files the change adds or renames: a file that was already there
is not this change's doing.
"""

from __future__ import annotations

from collections.abc import Iterator

from agents.vision.checks.base import Scope, finding
from agents.vision.diff import FileDiff, FileStatus
from agents.vision.findings import Finding
from agents.vision.globs import matches_any
from agents.vision.policy import NamingRule, PlacementRule


def _new_files(scope: Scope, rule: PlacementRule | NamingRule) -> Iterator[FileDiff]:
    for file in scope.files_for(rule):
        if file.status in (FileStatus.ADDED, FileStatus.RENAMED):
            yield file


def check_placement(rule: PlacementRule, scope: Scope) -> Iterator[Finding]:
    reported: set[str] = set()
    for file in _new_files(scope, rule):
        top = file.path.split("/", 1)[0]
        if rule.allowed_top_level is not None and top not in reported and not matches_any(top, rule.allowed_top_level):
            reported.add(top)
            yield finding(rule, file.path, detail=f"`{top}` is not an allowed top-level entry", content=top)
        if rule.under is not None and not matches_any(file.path, rule.under):
            where = (
                f"must live under {', '.join(f'`{glob}`' for glob in rule.under)}"
                if rule.under
                else "must not be committed"
            )
            yield finding(rule, file.path, detail=f"`{file.path}` {where}", content=file.path)


def check_naming(rule: NamingRule, scope: Scope) -> Iterator[Finding]:
    for file in _new_files(scope, rule):
        name = file.path.rsplit("/", 1)[-1]
        if not rule.compiled.fullmatch(name):
            yield finding(rule, file.path, detail=f"`{name}` does not match `{rule.regex}`", content=name)
