"""Pull requests: a branch, its files committed, and the PR opened or brought up to date."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from agents.context.documents import split_repo
from agents.outputs import PullRequest, marker
from bot.publish.common import Origin, blob_sha, carries, content_hash, status_of, with_marker
from bot.publish.records import PublishingBase, Where, key_for

if TYPE_CHECKING:
    from githubkit import GitHub


class PullRequestPublishing(PublishingBase):
    """Pull requests: a branch, its files committed, and the PR opened or brought up to date."""

    async def _pull_request(self, github: GitHub[Any], agent: str, output: PullRequest, origin: Origin) -> Where:
        owner, name = split_repo(output.repo)
        hidden = marker(agent, output.kind, output.key)
        body = with_marker(output.body, hidden)
        files = {path: text.encode() for path, text in output.files.items()}
        # Two halves, as for check runs: the PR's title and body, and what goes on the branch.
        pull_digest = content_hash(output.title, body)[:32]
        digest = pull_digest + content_hash(output.branch, output.base, {p: blob_sha(c) for p, c in files.items()})[:32]
        key = key_for(origin, output.repo, hidden)
        record = await self._load(key)
        if record is not None and record.content_hash == digest:
            return record.where
        base = output.base or await self._default_branch(github, owner, name)
        await self._ensure_branch(github, owner, name, output.branch, base)
        for path, content in files.items():
            await self._commit_file(github, owner, name, output.branch, path, content, output.commit_message)
        if record is not None and record.github_id is not None and (record.content_hash or "")[:32] == pull_digest:
            number, url = record.where  # only the files changed
        else:
            number, url = await self._upsert_pull(
                github, owner, name, output, base, body, hidden, record.github_id if record is not None else None
            )
        await self._save(key, agent, output.kind, origin, github_id=number, url=url, digest=digest)
        return number, url

    async def _upsert_pull(
        self,
        github: GitHub[Any],
        owner: str,
        name: str,
        output: PullRequest,
        base: str,
        body: str,
        hidden: str,
        number: int | None,
    ) -> Where:
        """Open the PR, or bring its title and body up to date: by its recorded number, else found by branch."""
        pull = None
        if number is not None:
            pull = await self._edit_pull(github, owner, name, number, output.title, body)
        if pull is None:
            pull = await self._find_pull(github, owner, name, output.branch, hidden) or await self._create_pull(
                github, owner, name, output, base, body, hidden
            )
            if pull.title != output.title or pull.body != body:
                pull = await self._edit_pull(github, owner, name, pull.number, output.title, body) or pull
        return pull.number, pull.html_url

    async def _ensure_branch(self, github: GitHub[Any], owner: str, name: str, branch: str, base: str) -> None:
        try:
            await github.rest.git.async_get_ref(owner, name, f"heads/{branch}")
            return
        except Exception as exc:
            if status_of(exc) != 404:
                raise
        base_sha = (await github.rest.git.async_get_ref(owner, name, f"heads/{base}")).parsed_data.object_.sha
        try:
            await github.rest.git.async_create_ref(owner, name, ref=f"refs/heads/{branch}", sha=base_sha)
        except Exception as exc:
            # Another worker created it between our look and our create: it exists, which is all we need.
            if status_of(exc) != 422 or "already exists" not in exc.response.text:  # type: ignore[attr-defined]  # a 422: RequestFailed
                raise

    async def _commit_file(
        self, github: GitHub[Any], owner: str, name: str, branch: str, path: str, content: bytes, message: str
    ) -> None:
        """Commit `content` to `path` on `branch` unless it is there already (same blob id)."""
        try:
            current = (await github.rest.repos.async_get_content(owner, name, path, ref=branch)).parsed_data
        except Exception as exc:
            if status_of(exc) != 404:
                raise
            current = None
        if isinstance(current, list):
            raise ValueError(f"{path} is a directory on {owner}/{name}@{branch}, not a file")
        if current is not None and current.sha == blob_sha(content):
            return
        optional: dict[str, Any] = {"sha": current.sha} if current is not None else {}
        await github.rest.repos.async_create_or_update_file_contents(
            owner,
            name,
            path,
            message=message,
            content=base64.b64encode(content).decode(),
            branch=branch,
            **optional,
        )

    async def _find_pull(self, github: GitHub[Any], owner: str, name: str, branch: str, hidden: str) -> Any:
        """The open PR from `branch`: ours (marker) first, else any — the branch is ours either way."""
        pulls = (
            await github.rest.pulls.async_list(owner, name, head=f"{owner}:{branch}", state="open", per_page=100)
        ).parsed_data
        # githubkit annotates it `list[...]` inside a class with a method named `list`, which mypy resolves to that
        return next((p for p in pulls if carries(p.body, hidden)), pulls[0] if pulls else None)  # type: ignore[attr-defined, index]

    async def _create_pull(
        self, github: GitHub[Any], owner: str, name: str, output: PullRequest, base: str, body: str, hidden: str
    ) -> Any:
        try:
            return (
                await github.rest.pulls.async_create(
                    owner, name, title=output.title, head=output.branch, base=base, body=body
                )
            ).parsed_data
        except Exception as exc:
            # Another worker opened it since we looked: use that one.
            if status_of(exc) == 422 and (found := await self._find_pull(github, owner, name, output.branch, hidden)):
                return found
            raise

    async def _edit_pull(self, github: GitHub[Any], owner: str, name: str, number: int, title: str, body: str) -> Any:
        """The edited PR, or None when it is gone."""
        try:
            return (await github.rest.pulls.async_update(owner, name, number, title=title, body=body)).parsed_data
        except Exception as exc:
            if status_of(exc) in (404, 410):
                return None
            raise
