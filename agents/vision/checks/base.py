"""What a check sees of a review, and how it reports."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from agents.vision.diff import AddedLine, Diff, FileDiff, FileStatus
from agents.vision.findings import Finding, Skipped, fingerprint
from agents.vision.policy import RuleBase

FilesAt = Callable[[str], bytes | None]  # a path → its bytes at one commit (None: not there)
T = TypeVar("T")


@dataclass
class Scope:
    """The files under review (the diff minus what the config ignores), and their
    contents at the head commit and, when the caller can read it, at the base commit,
    read at most once each. Rules about a file's state (its size, its schema) judge what
    the change did to it, so they compare the two sides. `fixtures` are the globs the
    repository config marks as test data."""

    diff: Diff
    files: tuple[FileDiff, ...]
    files_at_head: FilesAt
    files_at_base: FilesAt | None = None
    fixtures: tuple[str, ...] = ()
    skipped: list[Skipped] = field(default_factory=list)
    _contents: dict[str, bytes | None] = field(default_factory=dict)
    _base_contents: dict[str, bytes | None] = field(default_factory=dict)
    _joined: dict[str, str] = field(default_factory=dict)
    _lowered: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    _trees: dict[str, ast.Module | str] = field(default_factory=dict)
    _selected: dict[int, tuple[FileDiff, ...]] = field(default_factory=dict)
    _derived: dict[str, Any] = field(default_factory=dict)

    @property
    def text_files(self) -> Iterator[FileDiff]:
        return (f for f in self.files if f.has_text and f.additions)

    def files_for(self, rule: RuleBase) -> tuple[FileDiff, ...]:
        """The files under review that `rule` applies to (its paths, ignore, languages)."""
        key = id(rule)
        if key not in self._selected:
            self._selected[key] = tuple(f for f in self.files if rule.applies_to(f.path))
        return self._selected[key]

    def text_files_for(self, rule: RuleBase) -> Iterator[FileDiff]:
        """Of those, the ones with added lines to read."""
        return (f for f in self.files_for(rule) if f.has_text and f.additions)

    def content(self, path: str) -> bytes | None:
        if path not in self._contents:
            self._contents[path] = self.files_at_head(path)
        return self._contents[path]

    def base_content(self, file: FileDiff) -> bytes | None:
        """The file's bytes before the change (under its old name when renamed): empty when
        the change adds it, or when the caller gave no base to read (every file then counts
        as new); None when the base cannot be read."""
        if file.status is FileStatus.ADDED or self.files_at_base is None:
            return b""
        path = file.old_path or file.path
        if path not in self._base_contents:
            self._base_contents[path] = self.files_at_base(path)
        return self._base_contents[path]

    def joined(self, file: FileDiff) -> str:
        """A file's added lines as one text: one regex search rejects most files at once."""
        if file.path not in self._joined:
            self._joined[file.path] = "\n".join(line.text for line in file.added_lines())
        return self._joined[file.path]

    def lowered(self, file: FileDiff) -> tuple[str, list[str]]:
        """The joined added text and each added line, lowercased (for case-blind prefilters)."""
        if file.path not in self._lowered:
            joined = self.joined(file).lower()
            self._lowered[file.path] = (joined, joined.split("\n"))
        return self._lowered[file.path]

    def derived(self, key: str, compute: Callable[[], T]) -> T:
        """What `compute` derives from the review, once: rules of one kind that read the
        same thing (the secret rules, one per vendor) share it under one key."""
        if key not in self._derived:
            self._derived[key] = compute()
        return cast(T, self._derived[key])  # stored by compute() under this key

    def python_tree(self, path: str) -> ast.Module | str:
        """A Python file's syntax tree at the head commit, or why there is none."""
        if path not in self._trees:
            source = self.content(path)
            if source is None:
                self._trees[path] = "content at the head commit is not available"
            else:
                try:
                    self._trees[path] = ast.parse(source, filename=path)
                except (SyntaxError, ValueError) as exc:
                    self._trees[path] = f"not valid Python at the head commit ({exc.__class__.__name__})"
        return self._trees[path]

    def skip(self, rule: RuleBase, path: str | None, reason: str) -> None:
        self.skipped.append(Skipped(kind="rule", rule=rule.id, path=path, reason=reason))


def finding(
    rule: RuleBase,
    path: str | None,
    *,
    line: int | None = None,
    end_line: int | None = None,
    detail: str = "",
    content: str = "",
) -> Finding:
    """A finding of `rule`; `detail` completes its message, `content` identifies it."""
    message = f"{rule.message}: {detail}" if detail else rule.message
    return Finding(
        rule=rule.id,
        severity=rule.severity,
        path=path,
        line=line,
        end_line=end_line if end_line is not None else line,
        message=message,
        hint=rule.hint,
        fingerprint=fingerprint(rule.id, path, content or detail),
    )


def runs(lines: Iterable[AddedLine]) -> Iterator[list[AddedLine]]:
    """Consecutive lines grouped: one finding covers a block, not each of its lines."""
    run: list[AddedLine] = []
    for line in lines:
        if run and line.number != run[-1].number + 1:
            yield run
            run = []
        run.append(line)
    if run:
        yield run
