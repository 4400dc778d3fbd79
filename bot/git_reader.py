"""`RepoReader` over a local git clone: what a dry run reads where GitHub would be asked.

Without GitHub credentials nothing can be read from GitHub, so `waooaw replay --repo
PATH` and `waooaw demo` hand the agents a clone instead: a pull request is the change
from BASE to HEAD of the clone (its diff is `git diff BASE HEAD`, its files are read at
those commits). The payload names the PR's base and head by GitHub's SHAs, which the
clone need not have; those SHAs stand for BASE and HEAD here, so a payload recorded on
GitHub can be replayed against any clone.

Nobody's permission can be checked without GitHub: everyone reads as having none, so
commands that act or spend are refused, visibly — unless the caller names the clone's
maintainers (the demo's own sample repository has one).

Of what a spec agent reads, only the default branch's files are in a clone (read at
HEAD); issues, labels, releases, pull requests, contributors and stargazers live on
GitHub and read as empty.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Collection, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from agents.vision.globs import matches_any
from bot.git import Git, commit_range, toplevel
from bot.usage import UsageError


class LocalGitReader:
    """Reads the repository `repo` from a clone; every other repository reads as empty."""

    def __init__(
        self,
        git: Git,
        repo: str,
        base: str,
        head: str,
        *,
        stands_for: dict[str, str] | None = None,
        maintainers: Collection[str] = (),
    ) -> None:
        self.git = git
        self.repo = repo
        self.base, self.head = base, head
        self.stands_for = stands_for or {}  # a payload's SHA → the clone's commit it stands for
        self.maintainers = frozenset(maintainers)
        self._reading = threading.Lock()  # one `git cat-file --batch` process serves every read

    async def pull_request(self, repo: str, number: int) -> dict[str, Any]:
        return {
            "number": number,
            "state": "open",
            "draft": False,
            "user": None,
            "head": {"sha": self.head},
            "base": {"sha": self.base},
        }

    async def pull_request_diff(self, repo: str, number: int) -> str:
        return await self.compare_diff(repo, self.base, self.head)

    async def pull_request_files(self, repo: str, number: int) -> list[dict[str, Any]]:
        # GitHub's fallback for a diff too large to render; a clone renders any diff.
        raise NotImplementedError("a local clone always gives the whole diff")

    async def compare_diff(self, repo: str, base: str, head: str) -> str:
        diff = await asyncio.to_thread(self.git.diff, self._commit(base) or base, self._commit(head) or head)
        return diff.decode("utf-8", errors="replace")

    async def file_at(self, repo: str, ref: str, path: str) -> bytes | None:
        commit = self._commit(ref) if repo == self.repo else None
        if commit is None:
            return None
        return await asyncio.to_thread(self._read, commit, path)

    async def permission(self, repo: str, user: str) -> str:
        return "admin" if repo == self.repo and user in self.maintainers else "none"

    async def comment_reactions(self, repo: str, comment_id: int) -> list[dict[str, Any]] | None:
        return None  # a clone has no comments

    async def written_by_us(self, item: dict[str, Any]) -> bool:
        return False  # which App wrote an object only GitHub can say

    async def issue_with_comments(self, repo: str, number: int) -> dict[str, Any]:
        return {
            "number": number,
            "title": "",
            "body": "",
            "user": None,
            "labels": [],
            "state": "open",
            "url": "",
            "comments": [],
        }

    async def default_branch_files(
        self, repo: str, globs: Sequence[str], max_bytes: int, max_files: int
    ) -> dict[str, str]:
        if repo != self.repo:
            return {}
        return await asyncio.to_thread(self._files, globs, max_bytes, max_files)

    async def search_issues(
        self, repo: str, text: str, limit: int, state: str, *, exclude: Collection[int] = ()
    ) -> list[dict[str, Any]]:
        return []

    async def issues(
        self, repo: str, labels: Sequence[str], state: str, limit: int, updated_before_days: int | None = None
    ) -> list[dict[str, Any]]:
        return []  # a clone has no issues

    async def labels(self, repo: str) -> list[str]:
        return []

    async def releases(self, repo: str, limit: int) -> list[dict[str, Any]]:
        return []

    async def merged_pulls_since_release(
        self, repo: str, limit: int, *, release_tag: str | None = None
    ) -> list[dict[str, Any]]:
        return []

    async def contributors(self, repo: str, limit: int) -> list[dict[str, Any]]:
        return []

    async def stargazers(self, repo: str, limit: int) -> list[dict[str, Any]]:
        return []

    def _files(self, globs: Sequence[str], max_bytes: int, max_files: int) -> dict[str, str]:
        listed = self.git.run("-c", "core.quotePath=false", "ls-tree", "-r", "-z", "--name-only", self.head)
        paths = sorted(p for p in listed.stdout.decode("utf-8", errors="replace").split("\0") if p)
        files: dict[str, str] = {}
        for path in paths:
            if len(files) >= max_files:
                break
            if not matches_any(path, globs):
                continue
            data = self._read(self.head, path)
            text = file_text(data, max_bytes) if data is not None else None
            if text is not None:
                files[path] = text
        return files

    def _commit(self, ref: str) -> str | None:
        return self.stands_for.get(ref) or self.git.commit(ref)

    def _read(self, commit: str, path: str) -> bytes | None:
        with self._reading:
            return self.git.read(commit, path)


class LocalClone:
    """A clone opened for one replay: `with LocalClone(path, payload, base, head) as reader: …`.

    BASE and HEAD default to the payload's base and head SHAs when the clone has them,
    else to the merge-base with the default branch and HEAD, as `waooaw vision check`.
    Raises UsageError for a path that is no repository or a ref that is no commit.
    """

    def __init__(
        self,
        path: Path,
        payload: dict[str, Any],
        base: str | None = None,
        head: str | None = None,
        *,
        maintainers: Collection[str] = (),
    ) -> None:
        self.git = Git(toplevel(path))
        self.payload = payload
        self.refs = base, head
        self.maintainers = maintainers

    def __enter__(self) -> LocalGitReader:
        git = self.git.__enter__()
        named_base, named_head = _payload_range(self.payload)
        base, head = self.refs
        head = head or (named_head if named_head and git.commit(named_head) else "HEAD")
        base = base or (named_base if named_base and git.commit(named_base) else None)
        base_sha, head_sha = commit_range(git, base, head)
        stands_for = {sha: local for sha, local in ((named_base, base_sha), (named_head, head_sha)) if sha}
        repository = self.payload.get("repository")
        repo = repository.get("full_name") if isinstance(repository, dict) else None
        if not isinstance(repo, str):
            raise UsageError("the payload names no repository (repository.full_name) for the clone to stand for")
        return LocalGitReader(git, repo, base_sha, head_sha, stands_for=stands_for, maintainers=self.maintainers)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.git.__exit__(kind, exc, tb)


def _payload_range(payload: dict[str, Any]) -> tuple[str | None, str | None]:
    """The (base, head) SHAs a payload names: a pull request's, or a push's before and after."""
    pull = payload.get("pull_request")
    if isinstance(pull, dict):
        return _sha(pull.get("base")), _sha(pull.get("head"))
    before, after = payload.get("before"), payload.get("after")
    return (before if isinstance(before, str) else None), (after if isinstance(after, str) else None)


def _sha(side: object) -> str | None:
    sha = side.get("sha") if isinstance(side, dict) else None
    return sha if isinstance(sha, str) else None


def file_text(data: bytes, max_bytes: int) -> str | None:
    """A file's text for a reader, or None when it is larger than `max_bytes` or not UTF-8 text."""
    if len(data) > max_bytes or b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None
