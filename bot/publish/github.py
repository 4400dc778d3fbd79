"""The publisher to GitHub: each output kind's publishing, one marker one object."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import structlog

from agents.outputs import (
    CheckRun,
    Comment,
    IssueReport,
    Labels,
    Output,
    PullRequest,
    Reaction,
    Report,
    Review,
    ReviewDismissal,
    WorkflowDispatch,
)
from bot.publish.checks import CheckRunPublishing
from bot.publish.comments import CommentPublishing
from bot.publish.common import Origin, Published, PublishError
from bot.publish.dispatches import DispatchPublishing
from bot.publish.issues import IssuePublishing
from bot.publish.labels import LabelPublishing
from bot.publish.pulls import PullRequestPublishing
from bot.publish.records import Where
from bot.publish.reviews import ReviewPublishing

if TYPE_CHECKING:
    from githubkit import GitHub

log = structlog.get_logger(__name__)


class GitHubPublisher(
    CheckRunPublishing,
    CommentPublishing,
    DispatchPublishing,
    IssuePublishing,
    LabelPublishing,
    PullRequestPublishing,
    ReviewPublishing,
):
    """Publishes outputs through githubkit; one marker, one object on GitHub."""

    async def publish(self, agent: str, outputs: Sequence[Output], origin: Origin) -> list[Published]:
        """Publish every output; if some fail, the others still go out and PublishError says which."""
        if not outputs:
            return []
        github = self.clients.for_installation(origin.installation_id)
        errors: list[tuple[Output, BaseException]] = []
        published: list[Published] = []
        for output in outputs:
            try:
                published.append(await self._publish_one(github, agent, output, origin))
            except Exception as exc:  # noqa: BLE001 - reported below, after the others had their turn
                log.error(
                    "publish.failed",
                    agent=agent,
                    kind=output.kind,
                    key=output.key,
                    delivery=origin.delivery_id,
                    error=repr(exc),
                )
                errors.append((output, exc))
        if errors:
            raise PublishError(errors)
        return published

    async def close(self) -> None:
        await self.clients.aclose()

    async def _publish_one(self, github: GitHub[Any], agent: str, output: Output, origin: Origin) -> Published:
        handlers: dict[type, Callable[..., Awaitable[Where]]] = {
            Comment: self._comment,
            Reaction: self._reaction,
            Labels: self._labels,
            IssueReport: self._issue_report,
            Review: self._review,
            ReviewDismissal: self._dismiss_reviews,
            CheckRun: self._check_run,
            Report: self._report,
            PullRequest: self._pull_request,
            WorkflowDispatch: self._dispatch,
        }
        handler = handlers.get(type(output))
        if handler is None:  # pragma: no cover - Output is a closed union
            raise TypeError(f"unknown output {output!r}")
        github_id, url = await handler(github, agent, output, origin)
        return Published(output.kind, output.key, github_id, url)
