"""Comments and reactions, one marker one comment."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agents.context.documents import split_repo
from agents.outputs import Comment, Reaction, marker
from bot.publish.common import Origin, carries, content_hash, status_of, with_marker
from bot.publish.records import PublishingBase, Where, key_for

if TYPE_CHECKING:
    from githubkit import GitHub


class CommentPublishing(PublishingBase):
    """Comments and reactions, one marker one comment."""

    async def _comment(self, github: GitHub[Any], agent: str, output: Comment, origin: Origin) -> Where:
        owner, name = split_repo(output.repo)
        hidden = marker(agent, output.kind, output.key)
        key = key_for(origin, output.repo, hidden)
        body = with_marker(output.body, hidden)
        digest = content_hash(body, "close") if output.close else content_hash(body)
        record = await self._load(key)
        if record is not None and record.github_id is not None and record.content_hash == digest:
            return record.where  # closed too, when asked: a maintainer who reopened it is not overruled
        issue = await self._closable(github, owner, name, output) if output.close else None
        comment = None
        if record is not None and record.github_id is not None:
            comment = await self._edit_comment(github, owner, name, record.github_id, body)
        if comment is None:
            found = await self._find_comment(github, owner, name, output.issue_number, hidden)
            if found is None:
                comment = (
                    await github.rest.issues.async_create_comment(owner, name, output.issue_number, body=body)
                ).parsed_data
            elif found.body != body:
                comment = await self._edit_comment(github, owner, name, found.id, body) or found
            else:
                comment = found
        if issue is not None and issue.state != "closed":
            await github.rest.issues.async_update(
                owner, name, output.issue_number, state="closed", state_reason="not_planned"
            )
        await self._save(key, agent, output.kind, origin, github_id=comment.id, url=comment.html_url, digest=digest)
        return comment.id, comment.html_url

    @staticmethod
    async def _closable(github: GitHub[Any], owner: str, name: str, output: Comment) -> Any:
        """The issue a comment closes; a pull request is refused before anything is published."""
        issue = (await github.rest.issues.async_get(owner, name, output.issue_number)).parsed_data
        if issue.pull_request:
            raise ValueError(f"comment {output.key} would close #{output.issue_number}, a pull request: refused")
        return issue

    async def _edit_comment(self, github: GitHub[Any], owner: str, name: str, comment_id: int, body: str) -> Any:
        """The edited comment, or None when it is gone (deleted by someone)."""
        try:
            return (await github.rest.issues.async_update_comment(owner, name, comment_id, body=body)).parsed_data
        except Exception as exc:
            if status_of(exc) in (404, 410):
                return None
            raise

    async def _find_comment(self, github: GitHub[Any], owner: str, name: str, number: int, hidden: str) -> Any:
        async for comment in github.rest.paginate(  # type: ignore[var-annotated]  # paginate cannot infer from githubkit's overloads
            github.rest.issues.async_list_comments, owner=owner, repo=name, issue_number=number, per_page=100
        ):
            if carries(comment.body, hidden) and await self._ours(github, comment):
                return comment
        return None

    # -- reactions

    async def _reaction(self, github: GitHub[Any], agent: str, output: Reaction, origin: Origin) -> Where:
        owner, name = split_repo(output.repo)
        key = key_for(origin, output.repo, marker(agent, output.kind, output.key))
        if (record := await self._load(key)) is not None:
            return record.where
        if output.comment_id is not None:
            response = await github.rest.reactions.async_create_for_issue_comment(
                owner, name, output.comment_id, content=output.content
            )
        else:
            number = output.issue_number if output.issue_number is not None else origin.issue_number
            if number is None:
                raise ValueError(f"reaction {output.key} names neither a comment nor an issue")
            response = await github.rest.reactions.async_create_for_issue(owner, name, number, content=output.content)
        # 201 created, 200 already there: either way it is on GitHub now.
        await self._save(key, agent, output.kind, origin, github_id=response.parsed_data.id, url=None, digest=None)
        return response.parsed_data.id, None
