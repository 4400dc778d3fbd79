"""Workflow dispatches: the record is all there is of one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agents.context.documents import split_repo
from agents.outputs import WorkflowDispatch, marker
from bot.publish.common import Origin, content_hash
from bot.publish.records import PublishingBase, Where, key_for

if TYPE_CHECKING:
    from githubkit import GitHub


class DispatchPublishing(PublishingBase):
    """Workflow dispatches: the record is all there is of one."""

    async def _dispatch(self, github: GitHub[Any], agent: str, output: WorkflowDispatch, origin: Origin) -> Where:
        owner, name = split_repo(output.repo)
        key = key_for(origin, output.repo, marker(agent, output.kind, output.key))
        # A dispatch leaves nothing on GitHub that could carry a marker, so unlike the other
        # kinds there is nothing to search in the crash window: the record is the only memory.
        # A crash between GitHub's 204 and the record dispatches once more on redelivery.
        if await self._load(key) is not None:
            return None, None
        ref = output.ref or await self._default_branch(github, owner, name)
        await github.rest.actions.async_create_workflow_dispatch(
            owner, name, output.workflow, ref=ref, inputs=dict(output.inputs)
        )
        await self._save(
            key,
            agent,
            output.kind,
            origin,
            github_id=None,
            url=None,
            digest=content_hash(output.workflow, ref, output.inputs),
        )
        return None, None
