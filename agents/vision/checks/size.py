"""`size` rules: file size and lines added per file; lines and files per change."""

from __future__ import annotations

from collections.abc import Iterator

from agents.vision.checks.base import Scope, finding
from agents.vision.findings import Finding
from agents.vision.policy import SizeRule


def check_size(rule: SizeRule, scope: Scope) -> Iterator[Finding]:
    files = scope.files_for(rule)
    for file in files:
        if rule.max_added_lines is not None and file.additions > rule.max_added_lines:
            detail = f"{file.additions} lines added (limit {rule.max_added_lines})"
            yield finding(rule, file.path, detail=detail, content="added-lines")
        if rule.max_file_bytes is not None and not file.is_removed:
            content = scope.content(file.path)
            if content is None:
                scope.skip(rule, file.path, "content at the head commit is not available")
            elif len(content) > rule.max_file_bytes:
                detail = f"{_bytes(len(content))} (limit {_bytes(rule.max_file_bytes)})"
                yield finding(rule, file.path, detail=detail, content="file-bytes")
    if rule.max_changed_lines is not None:
        lines = sum(file.additions + file.deletions for file in files)
        if lines > rule.max_changed_lines:
            yield finding(rule, None, detail=f"{lines} lines changed (limit {rule.max_changed_lines})", content="lines")
    if rule.max_changed_files is not None:
        count = len(files) + sum(1 for path in scope.diff.omitted if rule.applies_to(path)) + scope.diff.unlisted
        if count > rule.max_changed_files:
            yield finding(rule, None, detail=f"{count} files changed (limit {rule.max_changed_files})", content="files")


def _bytes(size: int) -> str:
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"
