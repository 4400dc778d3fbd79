"""What agents may read from GitHub, as a Protocol the edge implements.

Agents never call GitHub; those that need to read a repository (a diff, a file at a
commit, who may run a command) are handed a `RepoReader` bound to the event's
installation. Tests hand them one backed by a fake GitHub; a dry run hands none.

The reads below `written_by_us` are what a spec agent's `reads` fetch before the model
sees anything (agents.factory); each is capped and returns plain dicts of a fixed shape,
not GitHub's whole objects, so a template sees the same fields whoever serves them.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Protocol


class RepoReader(Protocol):
    async def pull_request(self, repo: str, number: int) -> dict[str, Any]:
        """The pull request as the REST API returns it (head and base SHAs, draft, author)."""
        ...

    async def pull_request_diff(self, repo: str, number: int) -> str:
        """The PR's unified diff, as GitHub renders it."""
        ...

    async def pull_request_files(self, repo: str, number: int) -> list[dict[str, Any]]:
        """The PR's files with their patches (GitHub lists at most 3000; a huge patch is left out)."""
        ...

    async def compare_diff(self, repo: str, base: str, head: str) -> str:
        """The unified diff between two commits."""
        ...

    async def file_at(self, repo: str, ref: str, path: str) -> bytes | None:
        """A file's bytes at a commit, or None when it does not exist there."""
        ...

    async def permission(self, repo: str, user: str) -> str:
        """admin, maintain, write, triage, read or none."""
        ...

    async def comment_reactions(self, repo: str, comment_id: int) -> list[dict[str, Any]] | None:
        """The reactions on an issue or PR comment, each `{"id", "content", "user": {"id", "login",
        "type"}}`; None when the comment is gone."""
        ...

    async def written_by_us(self, item: dict[str, Any]) -> bool:
        """Whether GitHub names our App as the author of an issue or comment (as a payload holds
        it): a marker in its body says nothing, anyone can paste one."""
        ...

    async def issue_with_comments(self, repo: str, number: int) -> dict[str, Any]:
        """The issue (or a PR, as an issue) with its last 30 comments:
        {number, title, body, user, labels: [names], state, url, comments: [{user, body}]}."""
        ...

    async def default_branch_files(
        self, repo: str, globs: Sequence[str], max_bytes: int, max_files: int
    ) -> dict[str, str]:
        """{path: text} of the default branch's files matching any glob, sorted by path: at most
        `max_files` of them, each at most `max_bytes` (a larger or binary file is left out)."""
        ...

    async def search_issues(
        self, repo: str, text: str, limit: int, state: str, *, exclude: Collection[int] = ()
    ) -> list[dict[str, Any]]:
        """Issues of the repository sharing words with `text` (GitHub search), best first, at most
        `limit`, none numbered in `exclude` (the event's own issue); `state` is open, closed or all:
        [{number, title, state, url}]."""
        ...

    async def issues(
        self, repo: str, labels: Sequence[str], state: str, limit: int, updated_before_days: int | None = None
    ) -> list[dict[str, Any]]:
        """Issues of the repository (no pull requests) carrying every one of `labels`, `state` open,
        closed or all, least recently updated first, at most `limit` — with `updated_before_days`, only
        those not updated for that many days: [{number, title, state, labels: [names], user, updated_at,
        created_at, url, comments (their count)}]."""
        ...

    async def labels(self, repo: str) -> list[str]:
        """The names of the repository's labels."""
        ...

    async def releases(self, repo: str, limit: int) -> list[dict[str, Any]]:
        """The latest published releases, newest first: [{tag, name, published_at, url, body}]."""
        ...

    async def merged_pulls_since_release(
        self, repo: str, limit: int, *, release_tag: str | None = None
    ) -> list[dict[str, Any]]:
        """Pull requests merged since the latest release was published (all recent ones when
        there is none) — with `release_tag`, those that release holds: merged after the release
        before it, up to its publication —, newest first, at most `limit`:
        [{number, title, user, merged_at, url, labels}]."""
        ...

    async def contributors(self, repo: str, limit: int) -> list[dict[str, Any]]:
        """The top contributors by commits: [{login, contributions, type}]."""
        ...

    async def stargazers(self, repo: str, limit: int) -> list[dict[str, Any]]:
        """Who starred the repository, at most `limit`: [{login, type}]."""
        ...
