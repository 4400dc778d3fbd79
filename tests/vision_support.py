"""Builders for WowVision tests: diffs, packs, and throwaway git repositories."""

from __future__ import annotations

import difflib
import subprocess
from collections.abc import Mapping
from pathlib import Path

from agents.vision import RepoConfig, ReviewResult, parse_diff, review
from agents.vision.policy import Pack


def _lines(text: str) -> list[str]:
    """Lines ended by "\\n" only, as git sees them."""
    return text.removesuffix("\n").split("\n") if text else []


def added(path: str, text: str) -> str:
    """The git diff of a new file."""
    lines = _lines(text)
    body = "".join(f"+{line}\n" for line in lines)
    return (
        f"diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n"
        f"@@ -0,0 +1,{len(lines)} @@\n{body}"
    )


def modified(path: str, old: str, new: str) -> str:
    """The git diff of a changed file (3 lines of context, like git)."""
    body = "".join(
        line if line.endswith("\n") else line + "\n"
        for line in difflib.unified_diff(old.splitlines(), new.splitlines(), f"a/{path}", f"b/{path}", lineterm="")
    )
    return f"diff --git a/{path} b/{path}\n{body}"


def removed(path: str, text: str) -> str:
    lines = _lines(text)
    body = "".join(f"-{line}\n" for line in lines)
    return (
        f"diff --git a/{path} b/{path}\ndeleted file mode 100644\n--- a/{path}\n+++ /dev/null\n"
        f"@@ -1,{len(lines)} +0,0 @@\n{body}"
    )


def renamed(old: str, new: str) -> str:
    return f"diff --git a/{old} b/{new}\nsimilarity index 100%\nrename from {old}\nrename to {new}\n"


def pack(*rules: object, name: str = "test") -> Pack:
    return Pack(name=name, rules=list(rules))


def run(
    *diffs: str,
    rules: list[object],
    head: Mapping[str, str | bytes] | None = None,
    config: RepoConfig | None = None,
    base: Mapping[str, str | bytes] | None = None,
) -> ReviewResult:
    """Review the concatenated diffs with `rules`; `head` holds files at the head commit,
    `base` (when given) at the base commit."""
    at_base = None if base is None else _contents(base).get
    return review(
        parse_diff("".join(diffs)),
        _contents(head or {}).get,
        config or RepoConfig(),
        [pack(*rules)],
        files_at_base=at_base,
    )


def _contents(files: Mapping[str, str | bytes]) -> dict[str, bytes]:
    return {path: value.encode() if isinstance(value, str) else value for path, value in files.items()}


class GitRepo:
    """A real repository in a temporary directory."""

    def __init__(self, root: Path, branch: str = "main", *, init: bool = True) -> None:
        self.root = root
        if init:
            root.mkdir(parents=True, exist_ok=True)
            self.git("init", "-q", "-b", branch)
        self.git("config", "user.email", "dev@example.com")
        self.git("config", "user.name", "Dev")
        self.git("config", "commit.gpgsign", "false")

    @classmethod
    def clone(cls, source: Path, root: Path) -> GitRepo:
        subprocess.run(["git", "clone", "-q", str(source), str(root)], check=True, capture_output=True)
        return cls(root, init=False)

    def git(self, *args: str) -> str:
        done = subprocess.run(["git", *args], cwd=self.root, capture_output=True, text=True, check=True)
        return done.stdout.strip()

    def write(self, path: str, content: str | bytes) -> None:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)

    def commit(self, message: str, files: Mapping[str, str | bytes] | None = None) -> str:
        """Write `files` (path → content), commit everything, return the sha."""
        for path, content in (files or {}).items():
            self.write(path, content)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")
