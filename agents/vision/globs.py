"""Path globs as policies and the repository config write them.

One convention everywhere, close to .gitignore:

- a glob without a slash matches a file or directory name at any depth
  (`*.py`, `conftest.py`, `node_modules`);
- a glob with a slash before its end is anchored at the repository root
  (`agents/context/models.py`, `tests/**`); a leading `/` anchors too (`/README.md`),
  a trailing one alone does not (`tests/` is any directory named tests);
- a glob that matches a directory matches everything under it (`vendor`, `docs/`);
- `*` and `?` stay within one path segment, `**` crosses segments, `[abc]` is a
  character class and `{a,b}` an alternative.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache


def _expand_braces(glob: str) -> list[str]:
    start = glob.find("{")
    end = glob.find("}", start + 1)
    if start < 0 or end < 0:
        return [glob]
    head, body, tail = glob[:start], glob[start + 1 : end], glob[end + 1 :]
    return [expanded for option in body.split(",") for expanded in _expand_braces(head + option + tail)]


def _translate(glob: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(glob):
        char = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif char == "*":
            out.append("[^/]*")
            i += 1
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[":
            close = glob.find("]", i + 2)
            if close < 0:
                out.append(re.escape(char))
                i += 1
            else:
                body = glob[i + 1 : close]
                negate = body.startswith("!")
                out.append("[" + ("^" if negate else "") + body[negate:].replace("\\", "\\\\") + "]")
                i = close + 1
        else:
            out.append(re.escape(char))
            i += 1
    return "".join(out)


def glob_regex(glob: str) -> str:
    """The regular expression (unanchored at the end: `(?:/.*)?` is appended) of one glob."""
    parts = []
    for expanded in _expand_braces(glob.strip()):
        anchored = expanded.startswith("/")
        body = expanded.strip("/")
        prefix = "" if anchored or "/" in body else "(?:.*/)?"
        parts.append(prefix + _translate(body))
    return "(?:" + "|".join(parts) + ")(?:/.*)?"


@lru_cache(maxsize=1024)
def _compiled(globs: tuple[str, ...]) -> re.Pattern[str] | None:
    if not globs:
        return None
    return re.compile("|".join(glob_regex(glob) for glob in globs))


def matches_any(path: str, globs: Iterable[str]) -> bool:
    """Whether `path` (relative, with `/`) matches one of `globs`."""
    pattern = _compiled(tuple(globs))
    return pattern is not None and pattern.fullmatch(path) is not None


def validate_glob(glob: str) -> str:
    """Raise ValueError when a glob cannot be compiled; return it unchanged otherwise."""
    if not glob.strip():
        raise ValueError("a glob cannot be empty")
    try:
        re.compile(glob_regex(glob))
    except re.error as exc:
        raise ValueError(f"invalid glob {glob!r}: {exc}") from None
    return glob
