"""`RepoReader` over githubkit: what agents may read from GitHub, for one installation."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from githubkit.exception import RequestFailed

from agents.context.documents import split_repo
from bot.github import GitHubClients

DIFF = {"Accept": "application/vnd.github.diff"}


class GitHubReader:
    def __init__(self, clients: GitHubClients, installation_id: int | None) -> None:
        self.clients = clients
        self.installation_id = installation_id

    async def pull_request(self, repo: str, number: int) -> dict[str, Any]:
        owner, name = split_repo(repo)
        github = self.clients.for_installation(self.installation_id)
        return (await github.arequest("GET", f"/repos/{owner}/{name}/pulls/{number}")).json()

    async def pull_request_diff(self, repo: str, number: int) -> str:
        owner, name = split_repo(repo)
        return await self._text(f"/repos/{owner}/{name}/pulls/{number}")

    async def pull_request_files(self, repo: str, number: int) -> list[dict[str, Any]]:
        owner, name = split_repo(repo)
        github = self.clients.for_installation(self.installation_id)
        files: list[dict[str, Any]] = []
        for page in range(1, 31):  # 100 a page, and GitHub lists at most 3000
            response = await github.arequest(
                "GET", f"/repos/{owner}/{name}/pulls/{number}/files", params={"per_page": 100, "page": page}
            )
            batch = response.json()
            files.extend(batch)
            if len(batch) < 100:
                break
        return files

    async def compare_diff(self, repo: str, base: str, head: str) -> str:
        owner, name = split_repo(repo)
        return await self._text(f"/repos/{owner}/{name}/compare/{base}...{head}")

    async def file_at(self, repo: str, ref: str, path: str) -> bytes | None:
        # Configs and policy files are read on every event: conditionally, so an unchanged one is free.
        owner, name = split_repo(repo)
        try:
            content = await self.clients.get_json_again(
                self.installation_id, f"/repos/{owner}/{name}/contents/{path}", {"ref": ref}
            )
        except RequestFailed as exc:
            if exc.response.status_code == 404:
                return None
            raise
        if not isinstance(content, dict) or content.get("type") != "file":
            return None  # a directory or a submodule: not a file to read
        return base64.b64decode(content.get("content") or "")

    async def permission(self, repo: str, user: str) -> str:
        return await self.clients.permission(self.installation_id, repo, user)

    async def written_by_us(self, item: dict[str, Any]) -> bool:
        # As the publisher tells its own objects apart: our App's id, else our author's user id.
        via = (item.get("performed_via_github_app") or {}).get("id")
        if via is not None and via == self.clients.app_id:
            return True
        author = await self.clients.author_id(self.clients.for_installation(self.installation_id))
        return author is not None and (item.get("user") or {}).get("id") == author

    async def issue_with_comments(self, repo: str, number: int) -> dict[str, Any]:
        raise NotImplementedError

    async def default_branch_files(
        self, repo: str, globs: Sequence[str], max_bytes: int, max_files: int
    ) -> dict[str, str]:
        raise NotImplementedError

    async def search_issues(self, repo: str, text: str, limit: int, state: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def labels(self, repo: str) -> list[str]:
        raise NotImplementedError

    async def releases(self, repo: str, limit: int) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def merged_pulls_since_release(self, repo: str, limit: int) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def contributors(self, repo: str, limit: int) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def stargazers(self, repo: str, limit: int) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def _text(self, path: str) -> str:
        github = self.clients.for_installation(self.installation_id)
        response = await github.arequest("GET", path, headers=DIFF)
        return response.text
