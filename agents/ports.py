"""What agents may read from GitHub, as a Protocol the edge implements.

Agents never call GitHub; those that need to read a repository (a diff, a file at a
commit, who may run a command) are handed a `RepoReader` bound to the event's
installation. Tests hand them one backed by a fake GitHub; a dry run hands none.
"""

from __future__ import annotations

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
        """The reactions on an issue or PR comment, each as the REST API returns it (content, user);
        None when the comment is gone."""
        ...

    async def written_by_us(self, item: dict[str, Any]) -> bool:
        """Whether GitHub names our App as the author of an issue or comment (as a payload holds
        it): a marker in its body says nothing, anyone can paste one."""
        ...
