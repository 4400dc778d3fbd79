"""`size` rules: file size and lines added per file; lines and files per change.

A file over `max_file_bytes` is reported when the change adds it or grows it past the
limit: one that was already over it at the base is not this change's doing, and
reporting it on every later edit would teach readers to skip the rule.
"""

from __future__ import annotations

from collections.abc import Iterator

from agents.vision.checks.base import Scope, finding
from agents.vision.diff import FileDiff
from agents.vision.findings import Finding
from agents.vision.policy import SizeRule


def check_size(rule: SizeRule, scope: Scope) -> Iterator[Finding]:
    files = scope.files_for(rule)
    for file in files:
        if rule.max_added_lines is not None and file.additions > rule.max_added_lines:
            detail = f"{file.additions} lines added (limit {rule.max_added_lines})"
            yield finding(rule, file.path, detail=detail, content="added-lines")
        if rule.max_file_bytes is not None and not file.is_removed:
            yield from _file_bytes(rule, rule.max_file_bytes, file, scope)
    if rule.max_changed_lines is not None:
        lines = sum(file.additions + file.deletions for file in files)
        if lines > rule.max_changed_lines:
            yield finding(rule, None, detail=f"{lines} lines changed (limit {rule.max_changed_lines})", content="lines")
    if rule.max_changed_files is not None:
        count = len(files) + sum(1 for path in scope.diff.omitted if rule.applies_to(path)) + scope.diff.unlisted
        if count > rule.max_changed_files:
            yield finding(rule, None, detail=f"{count} files changed (limit {rule.max_changed_files})", content="files")


def _file_bytes(rule: SizeRule, limit: int, file: FileDiff, scope: Scope) -> Iterator[Finding]:
    content = scope.content(file.path)
    if content is None:
        scope.skip(rule, file.path, "content at the head commit is not available")
        return
    if len(content) <= limit:
        return
    before = scope.base_content(file)
    if before is None:
        scope.skip(rule, file.path, "content at the base commit is not available")
    elif len(before) <= limit:
        grew = f"grew from {_bytes(len(before))} to " if before else ""
        detail = f"{grew}{_bytes(len(content))} (limit {_bytes(limit)})"
        yield finding(rule, file.path, detail=detail, content="file-bytes")


def _bytes(size: int) -> str:
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"
