"""The diff under review, on `unidiff`: files, hunks, added lines, and anchors.

Two sources build the same model: `parse_diff` reads `git diff` output (any bytes:
text that is not UTF-8 is decoded with replacement characters, never a crash), and
`from_github_files` reads the entries of GitHub's "list pull request files" API,
where a file GitHub did not send a patch for is marked `truncated`.

At most `MAX_FILES` files are reviewed (GitHub lists no more than 3000 files of a
pull request); the rest are recorded in `Diff.omitted` so the review can say so.

`anchor()` turns a finding's (path, line[, start_line]) into a review-comment
position GitHub accepts — a line on the new side inside one hunk — or None, in which
case the finding belongs in the summary. GitHub fails the whole review with 422 on a
single position outside the diff, so nothing else may produce inline positions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from unidiff import PatchedFile, PatchSet
from unidiff.constants import DEV_NULL, RE_HUNK_HEADER
from unidiff.errors import UnidiffParseError

MAX_FILES = 3000


class FileStatus(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    MODIFIED = "modified"
    RENAMED = "renamed"


@dataclass(frozen=True, slots=True)
class AddedLine:
    number: int  # on the new side
    text: str  # without the leading "+" and the line ending


@dataclass(frozen=True, slots=True)
class Hunk:
    old_start: int
    old_length: int
    new_start: int
    new_length: int
    added: tuple[AddedLine, ...]
    removed: int
    raw: tuple[str, ...] = field(repr=False)  # the hunk's lines as in the diff, header first

    @property
    def body(self) -> str:
        """The hunk as unified-diff text, header included."""
        return "".join(line if line.endswith("\n") else line + "\n" for line in self.raw)

    @property
    def new_end(self) -> int:
        return self.new_start + self.new_length - 1

    def excerpt(self, start: int, end: int) -> str:
        """The hunk's lines whose new-side number is in [start, end] (and the removed lines
        between them), as unified-diff text under a header naming the range."""
        out = [f"@@ new lines {start}-{end} @@"]
        number = self.new_start
        for line in self.raw[1:]:
            line = line.rstrip("\n")
            if line.startswith("-"):
                if start <= number <= end + 1:
                    out.append(line)
                continue
            if line.startswith("\\"):
                continue
            if start <= number <= end:
                out.append(line)
            number += 1
        return "\n".join(out) + "\n"

    def contains(self, line: int) -> bool:
        """Whether `line` (new side) is a line of this hunk: added or context."""
        return self.new_length > 0 and self.new_start <= line <= self.new_end


@dataclass(frozen=True, slots=True)
class FileDiff:
    path: str  # the new path; the old one for a removed file
    status: FileStatus
    old_path: str | None = None  # set when renamed
    hunks: tuple[Hunk, ...] = ()
    is_binary: bool = False
    truncated: bool = False  # GitHub sent no patch: the change is too large to show
    old_mode: str | None = None
    new_mode: str | None = None
    additions: int = 0
    deletions: int = 0

    @property
    def mode_changed(self) -> bool:
        return self.old_mode is not None and self.new_mode is not None and self.old_mode != self.new_mode

    @property
    def is_removed(self) -> bool:
        return self.status is FileStatus.REMOVED

    @property
    def has_text(self) -> bool:
        """A patch we can read line by line (not binary, not truncated, not removed)."""
        return not (self.is_binary or self.truncated or self.is_removed)

    def added_lines(self) -> Iterator[AddedLine]:
        for hunk in self.hunks:
            yield from hunk.added

    def hunk_at(self, line: int) -> Hunk | None:
        for hunk in self.hunks:
            if hunk.contains(line):
                return hunk
        return None


@dataclass(frozen=True)
class Diff:
    files: tuple[FileDiff, ...]
    omitted: tuple[str, ...] = ()  # known paths beyond the file cap, not reviewed
    unlisted: int = 0  # files beyond the cap whose paths we were never told

    _by_path: dict[str, FileDiff] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_path", {f.path: f for f in self.files})

    def file(self, path: str) -> FileDiff | None:
        return self._by_path.get(path)

    @property
    def omitted_count(self) -> int:
        return len(self.omitted) + self.unlisted

    @property
    def changed_files(self) -> int:
        return len(self.files) + self.omitted_count


@dataclass(frozen=True, slots=True)
class Anchor:
    """A review-comment position GitHub accepts."""

    path: str
    line: int
    side: Literal["RIGHT"] = "RIGHT"
    start_line: int | None = None  # first line of a multi-line comment; None for one line


def anchor(diff: Diff, path: str, line: int | None, start_line: int | None = None) -> Anchor | None:
    """The position for a comment on `line` (and from `start_line`), or None.

    Both lines must be on the new side of one hunk of `path`: GitHub rejects a
    multi-line comment that spans hunks, and any line outside the diff.
    """
    file = diff.file(path)
    if file is None or line is None or not file.has_text:
        return None
    hunk = file.hunk_at(line)
    if hunk is None:
        return None
    if start_line is None or start_line == line:
        return Anchor(path, line)
    if start_line > line or not hunk.contains(start_line):
        return None
    return Anchor(path, line, start_line=start_line)


# --- git diff output ---------------------------------------------------------

_GIT_HEADER = "diff --git "
_QUOTED_ESCAPES = {"a": "\a", "b": "\b", "t": "\t", "n": "\n", "v": "\v", "f": "\f", "r": "\r", '"': '"', "\\": "\\"}


def parse_diff(text: str | bytes, *, max_files: int = MAX_FILES) -> Diff:
    """Parse unified diff text (e.g. `git diff` output); review at most `max_files` files."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    lines = split_lines(text)
    starts = [i for i, line in enumerate(lines) if line.startswith(_GIT_HEADER)]
    omitted: list[str] = []
    if len(starts) > max_files:
        cut = starts[max_files]
        omitted = [_path_from_git_header(lines[i]) for i in starts[max_files:]]
        lines = lines[:cut]
    files = _parse_files(lines)
    if len(files) > max_files:  # a plain unified diff, without git headers to cut at
        omitted += [f.path for f in files[max_files:]]
        files = files[:max_files]
    return Diff(tuple(files), omitted=tuple(omitted))


def split_lines(text: str) -> list[str]:
    """Lines ended by "\\n" only, endings kept: a form feed or U+2028 inside a line is
    text, not a line break (str.splitlines would break the hunk counts on them)."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _unquote(path: str) -> str:
    """A path as git prints it: C-quoted when it holds unusual bytes."""
    if not (len(path) >= 2 and path[0] == '"' and path[-1] == '"'):
        return path
    raw, out, i = path[1:-1], bytearray(), 0
    while i < len(raw):
        char = raw[i]
        if char == "\\" and i + 1 < len(raw):
            nxt = raw[i + 1]
            if nxt in "01234567" and re.match(r"[0-7]{3}", raw[i + 1 : i + 4]):
                out.append(int(raw[i + 1 : i + 4], 8))
                i += 4
                continue
            out += _QUOTED_ESCAPES.get(nxt, nxt).encode()
            i += 2
            continue
        out += char.encode()
        i += 1
    return out.decode("utf-8", errors="replace")


def _strip_prefix(path: str) -> str:
    path = _unquote(path.strip())
    return path[2:] if re.match(r"^[abciow12]/", path) else path


def _path_from_git_header(line: str) -> str:
    rest = line[len(_GIT_HEADER) :].rstrip("\n")
    if rest.startswith('"'):
        end = rest.index('"', 1) + 1 if '"' in rest[1:] else len(rest)
        target = rest[end:].strip()
        return _strip_prefix(target or rest[:end])
    half = rest.rfind(" b/")
    return _strip_prefix(rest[half + 1 :] if half >= 0 else rest)


def _info_value(patched: PatchedFile, prefix: str) -> str | None:
    for line in patched.patch_info or ():
        if line.startswith(prefix):
            return _unquote(line[len(prefix) :].rstrip("\n"))
    return None


def _parse_files(lines: list[str]) -> list[FileDiff]:
    """unidiff reads the structure (files, modes, renames, hunk headers; it validates the
    counts); the hunks' lines are then read straight from the text, which is several
    times faster than unidiff building an object per line."""
    try:
        patch = PatchSet(lines, metadata_only=True)
    except UnidiffParseError as exc:
        raise ValueError(f"not a unified diff: {exc}") from None
    headers = iter([i for i, line in enumerate(lines) if line.startswith("@@ ") and RE_HUNK_HEADER.match(line)])
    return [_file_from_unidiff(patched, tuple(_hunk(lines, next(headers), h) for h in patched)) for patched in patch]


def _file_from_unidiff(patched: PatchedFile, hunks: tuple[Hunk, ...]) -> FileDiff:
    source = None if patched.source_file in (None, DEV_NULL) else patched.source_file
    target = None if patched.target_file in (None, DEV_NULL) else patched.target_file
    # "rename from/to" and the ---/+++ lines name paths exactly; the "diff --git" header
    # is ambiguous when a path holds " b/".
    old_path = _info_value(patched, "rename from ") or (_strip_prefix(source) if source else None)
    new_path = _info_value(patched, "rename to ") or (_strip_prefix(target) if target else None)
    if target is None:
        status, path = FileStatus.REMOVED, old_path or patched.path
    elif source is None:
        status, path = FileStatus.ADDED, new_path or patched.path
    elif old_path is not None and new_path is not None and old_path != new_path:
        status, path = FileStatus.RENAMED, new_path
    else:
        status, path = FileStatus.MODIFIED, new_path or patched.path
    return FileDiff(
        path=path,
        status=status,
        old_path=old_path if status is FileStatus.RENAMED else None,
        hunks=hunks,
        is_binary=bool(patched.is_binary_file),
        old_mode=patched.source_mode,
        new_mode=patched.target_mode,
        additions=sum(len(h.added) for h in hunks),
        deletions=sum(h.removed for h in hunks),
    )


def _hunk(lines: list[str], header: int, meta: Any) -> Hunk:
    """The hunk whose header is `lines[header]`, with its added lines and their numbers."""
    old_left, new_left = meta.source_length, meta.target_length
    number = meta.target_start
    added: list[AddedLine] = []
    removed = 0
    end = header + 1
    while (old_left > 0 or new_left > 0) and end < len(lines):
        line = lines[end]
        end += 1
        kind = line[0] if line and line[0] not in "\r\n" else " "
        if kind == "+":
            added.append(AddedLine(number, line[1:].rstrip("\r\n")))
            number += 1
            new_left -= 1
        elif kind == "-":
            removed += 1
            old_left -= 1
        elif kind == " ":
            number += 1
            old_left -= 1
            new_left -= 1
    return Hunk(
        old_start=meta.source_start,
        old_length=meta.source_length,
        new_start=meta.target_start,
        new_length=meta.target_length,
        added=tuple(added),
        removed=removed,
        raw=tuple(lines[header:end]),
    )


# --- GitHub's pull request files ---------------------------------------------

_GITHUB_STATUS = {
    "added": FileStatus.ADDED,
    "removed": FileStatus.REMOVED,
    "renamed": FileStatus.RENAMED,
    "modified": FileStatus.MODIFIED,
    "changed": FileStatus.MODIFIED,
    "copied": FileStatus.ADDED,
    "unchanged": FileStatus.MODIFIED,
}


def from_github_files(
    entries: Iterable[Mapping[str, Any]], *, total_files: int | None = None, max_files: int = MAX_FILES
) -> Diff:
    """Build the diff from `GET /repos/{o}/{r}/pulls/{n}/files` entries.

    `total_files` is the pull request's `changed_files`: GitHub lists at most 3000
    files, so the ones it never listed are counted in `Diff.unlisted`.
    """
    files: list[FileDiff] = []
    omitted: list[str] = []
    for entry in entries:
        if len(files) >= max_files:
            omitted.append(str(entry["filename"]))
            continue
        files.append(_file_from_github(entry))
    listed = len(files) + len(omitted)
    unlisted = max(0, (total_files or 0) - listed)
    return Diff(tuple(files), omitted=tuple(omitted), unlisted=unlisted)


def _file_from_github(entry: Mapping[str, Any]) -> FileDiff:
    path = str(entry["filename"])
    status = _GITHUB_STATUS.get(str(entry.get("status")), FileStatus.MODIFIED)
    old_path = entry.get("previous_filename") if status is FileStatus.RENAMED else None
    patch = entry.get("patch")
    additions, deletions = int(entry.get("additions") or 0), int(entry.get("deletions") or 0)
    hunks: tuple[Hunk, ...] = ()
    binary = truncated = False
    if patch:
        text = f"--- a/{old_path or path}\n+++ b/{path}\n" + patch + ("" if patch.endswith("\n") else "\n")
        try:
            parsed = _parse_files(split_lines(text))
            hunks = parsed[0].hunks if parsed else ()
        except ValueError:
            truncated = True
    elif status is not FileStatus.REMOVED:
        # No patch: GitHub shows none for binary files (no line counts) and for
        # diffs too large to display (line counts but no text).
        changes = int(entry.get("changes") or 0)
        binary = changes == 0 and status is not FileStatus.RENAMED
        truncated = changes > 0
    return FileDiff(
        path=path,
        status=status,
        old_path=old_path,
        hunks=hunks,
        is_binary=binary,
        truncated=truncated,
        additions=additions,
        deletions=deletions,
    )
