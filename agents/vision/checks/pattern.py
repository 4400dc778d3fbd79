"""`pattern` rules: a regex on added lines."""

from __future__ import annotations

from collections.abc import Iterator

from agents.vision.checks.base import Scope, finding, runs
from agents.vision.diff import FileDiff
from agents.vision.findings import Finding
from agents.vision.policy import PatternRule


def check_pattern(rule: PatternRule, scope: Scope) -> Iterator[Finding]:
    for file in scope.text_files_for(rule):
        if not rule.compiled_multiline.search(scope.joined(file)):
            continue
        unless = rule.compiled_unless
        hits = [
            line
            for line in file.added_lines()
            if rule.compiled.search(line.text) and not (unless is not None and unless.search(line.text))
        ]
        if not hits or _file_spared(rule, file, scope):
            continue
        for run in runs(hits):
            yield finding(rule, file.path, line=run[0].number, end_line=run[-1].number, content=run[0].text)


def _file_spared(rule: PatternRule, file: FileDiff, scope: Scope) -> bool:
    """Whether the whole file matches the rule's `unless_file` (read only for a file it would report)."""
    if rule.compiled_unless_file is None:
        return False
    content = scope.content(file.path)
    return content is not None and rule.compiled_unless_file.search(content.decode("utf-8", "replace")) is not None
