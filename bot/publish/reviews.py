"""Reviews (their inline comments placed on the diff where GitHub accepts them) and their dismissal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import structlog

from agents import markdown as md
from agents.context.documents import split_repo
from agents.outputs import InlineComment, Review, ReviewDismissal, marker
from bot.publish.common import Origin, carries, content_hash, status_of, with_marker
from bot.publish.records import PublishingBase, Where, key_for

if TYPE_CHECKING:
    from githubkit import GitHub

log = structlog.get_logger(__name__)

# Requests (create and delete) spent telling apart the inline comments GitHub rejects; a
# pending review counts as content creation (80/min, 500/h). Also at most 2 per comment.
REVIEW_PROBE_LIMIT = 50
PROBE_BODY = "WowVision: checking which comments fit on the diff (deleted at once)."

T = TypeVar("T")


def _inline(comment: InlineComment) -> dict[str, Any]:
    data: dict[str, Any] = {"path": comment.path, "line": comment.line, "side": comment.side, "body": comment.body}
    if comment.start_line is not None and comment.start_line < comment.line:
        data["start_line"] = comment.start_line
        data["start_side"] = comment.side
    return data


class _ProbesSpent(Exception):
    """The probe budget ran out before the comments that anchor were told apart."""


async def bisect_accepted(comments: Sequence[T], fits: Callable[[Sequence[T]], Awaitable[bool]]) -> list[T]:
    """The comments that `fits` accepts, given that all of them together are refused.

    Bisection: a part that fits is kept whole, a single comment refused is dropped. When
    the left half of a refused part fits, the right half is refused without asking.
    """

    async def split(part: Sequence[T], refused: bool) -> list[T]:
        if not refused and await fits(part):
            return list(part)
        if len(part) == 1:
            return []
        middle = len(part) // 2
        left = await split(part[:middle], False)
        return left + await split(part[middle:], len(left) == middle)

    return await split(comments, True) if comments else []


def _unanchored(comments: Sequence[InlineComment]) -> str:
    lines = ["", "", "**Comments that could not be placed on the diff:**", ""]
    for c in comments:
        where = f"{c.path}:{c.start_line}-{c.line}" if c.start_line and c.start_line < c.line else f"{c.path}:{c.line}"
        text = " ".join(c.body.split())  # the agent's Markdown, on one line
        lines.append(f"- {md.code(where)} — {text[:500] + '…' if len(text) > 500 else text}")
    return "\n".join(lines)


class ReviewPublishing(PublishingBase):
    """Reviews (their inline comments placed on the diff where GitHub accepts them) and their dismissal."""

    async def _review(self, github: GitHub[Any], agent: str, output: Review, origin: Origin) -> Where:
        owner, name = split_repo(output.repo)
        hidden = marker(agent, output.kind, output.key)  # in the body
        # One record per (SHA, key).
        record_key = key_for(origin, output.repo, marker(agent, output.kind, f"{output.key}@{output.commit_sha}"))
        if (record := await self._load(record_key)) is not None:
            return record.where
        review, leftovers = None, []
        async for existing in github.rest.paginate(  # type: ignore[var-annotated]  # paginate cannot infer from githubkit's overloads
            github.rest.pulls.async_list_reviews, owner=owner, repo=name, pull_number=output.pr_number, per_page=100
        ):
            if existing.commit_id != output.commit_sha or not carries(existing.body, hidden):
                continue
            if not await self._ours(github, existing):
                continue
            if existing.state != "PENDING":
                review = existing
                break
            leftovers.append(existing.id)  # a probe whose run died before deleting it
        if review is None:
            for review_id in leftovers:  # GitHub allows one pending review: it would refuse ours
                await github.rest.pulls.async_delete_pending_review(owner, name, output.pr_number, review_id)
            review = await self._post_review(github, owner, name, output, hidden)
        await self._save(
            record_key,
            agent,
            output.kind,
            origin,
            github_id=review.id,
            url=review.html_url,
            digest=content_hash(review.body),
        )
        return review.id, review.html_url

    async def _post_review(self, github: GitHub[Any], owner: str, name: str, output: Review, hidden: str) -> Any:
        inline: Sequence[InlineComment] = output.comments
        if inline:
            try:
                return await self._create_review(github, owner, name, output, hidden, inline)
            except Exception as exc:
                if status_of(exc) != 422:
                    raise
            # One anchor outside the diff fails the whole review, and GitHub does not say
            # which: keep the comments that anchor inline, list only the others in the body.
            anchored = await self._anchorable(github, owner, name, output, hidden)
            inline = anchored or ()
            log.warning(
                "publish.review_inline_rejected",
                repo=output.repo,
                pr=output.pr_number,
                comments=len(output.comments),
                moved=len(output.comments) - len(inline),
                probes_sufficed=anchored is not None,
            )
        return await self._create_review(github, owner, name, output, hidden, inline)

    async def _create_review(
        self, github: GitHub[Any], owner: str, name: str, output: Review, hidden: str, inline: Sequence[InlineComment]
    ) -> Any:
        """The review with `inline` on the diff; its other comments are listed in the body."""
        moved = [c for c in output.comments if c not in inline]
        body = with_marker(output.body + (_unanchored(moved) if moved else ""), hidden)
        comments: dict[str, Any] = {"comments": [_inline(c) for c in inline]} if inline else {}
        return (
            await github.rest.pulls.async_create_review(
                owner,
                name,
                output.pr_number,
                commit_id=output.commit_sha,
                body=body,
                event=output.event,
                **comments,
            )
        ).parsed_data

    async def _anchorable(
        self, github: GitHub[Any], owner: str, name: str, output: Review, hidden: str
    ) -> list[InlineComment] | None:
        """The review's comments that anchor on the diff; None when the probe budget ran out first."""
        budget, spent = min(2 * len(output.comments), REVIEW_PROBE_LIMIT), 0

        async def fits(comments: Sequence[InlineComment]) -> bool:
            nonlocal spent
            if spent + 2 > budget:  # a probe that fits costs its delete too
                raise _ProbesSpent
            fitted = await self._probe_review(github, owner, name, output, hidden, comments)
            spent += 2 if fitted else 1
            return fitted

        try:
            return await bisect_accepted(output.comments, fits)
        except _ProbesSpent:
            return None

    async def _probe_review(
        self, github: GitHub[Any], owner: str, name: str, output: Review, hidden: str, comments: Sequence[InlineComment]
    ) -> bool:
        """Do all `comments` anchor? A pending review (no `event`) is checked as a real one,
        and is deleted at once: GitHub allows one pending review per user and pull request."""
        pending = None
        try:
            pending = (
                await github.rest.pulls.async_create_review(
                    owner,
                    name,
                    output.pr_number,
                    commit_id=output.commit_sha,
                    body=with_marker(PROBE_BODY, hidden),
                    comments=[_inline(c) for c in comments],
                )
            ).parsed_data
            return True
        except Exception as exc:
            if status_of(exc) == 422:
                return False
            raise
        finally:
            if pending is not None:
                await github.rest.pulls.async_delete_pending_review(owner, name, output.pr_number, pending.id)

    async def _dismiss_reviews(self, github: GitHub[Any], agent: str, output: ReviewDismissal, origin: Origin) -> Where:
        # Nothing is recorded: a review's state on GitHub says whether it is dismissed already.
        owner, name = split_repo(output.repo)
        hidden = marker(agent, Review.kind, output.review_key)
        stale = [  # type: ignore[var-annotated]  # paginate cannot infer from githubkit's overloads
            review.id
            async for review in github.rest.paginate(
                github.rest.pulls.async_list_reviews, owner=owner, repo=name, pull_number=output.pr_number, per_page=100
            )
            if review.state == "CHANGES_REQUESTED" and carries(review.body, hidden) and await self._ours(github, review)
        ]
        for review_id in stale:
            try:
                await github.rest.pulls.async_dismiss_review(
                    owner, name, output.pr_number, review_id, message=output.message, event="DISMISS"
                )
            except Exception as exc:
                if status_of(exc) != 422:
                    raise
                log.info(
                    "publish.review_not_dismissed",
                    repo=output.repo,
                    pr=output.pr_number,
                    review=review_id,
                    reason="no longer requesting changes",
                )  # dismissed by someone since we looked
        if stale:
            log.info("publish.reviews_dismissed", repo=output.repo, pr=output.pr_number, reviews=len(stale))
        return None, None
