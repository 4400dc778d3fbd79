"""Publishing Output intents to GitHub, idempotently.

Every output carries the hidden marker `<!-- waooaw:{agent}:{kind}:{key} -->` and is
remembered in `published_outputs`, so a redelivered event edits what it posted
before instead of posting again. A marker names an output within one repository of
one installation: the record is keyed by all three. When the record is missing (a
crash between "GitHub created it" and "we recorded it"), GitHub itself is searched for
the marker before anything is created; an object found there is ours only if our App
wrote it and the marker ends its body, where we put it — one anywhere else was quoted
or planted.

`published_outputs.github_id` holds what the API addresses the object by: the
comment, review, check run or reaction id, and the issue or pull request *number*.
A workflow dispatch leaves no object behind, so its record is all there is of it.

`publish` answers with one `Published` per output, in order: what it became on GitHub.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import sys
import textwrap
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TextIO, TypeVar

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from agents import markdown as md
from agents.store.tables import NO_INSTALLATION, PublishedOutput
from agents.events import Event, trailing_marker
from agents.outputs import (
    CheckRun,
    Comment,
    InlineComment,
    IssueReport,
    Output,
    PullRequest,
    Reaction,
    Report,
    Review,
    ReviewDismissal,
    WorkflowDispatch,
    marker,
)

if TYPE_CHECKING:
    from githubkit import GitHub

    from agents.store.db import Store
    from bot.github import GitHubClients

log = structlog.get_logger(__name__)

BODY_LIMIT = 65_536  # comments, issues and reviews
SUMMARY_LIMIT = 65_535  # check run output summary
ANNOTATIONS_PER_REQUEST = 50
ISSUE_SEARCH_PAGES = 5  # newest 500 issues: where a crash-window issue would be
# Requests (create and delete) spent telling apart the inline comments GitHub rejects; a
# pending review counts as content creation (80/min, 500/h). Also at most 2 per comment.
REVIEW_PROBE_LIMIT = 50
PROBE_BODY = "WowVision: checking which comments fit on the diff (deleted at once)."

T = TypeVar("T")


@dataclass(frozen=True)
class Published:
    """What one output became: its `published_outputs.github_id` and page, None where there is none."""

    kind: str
    key: str
    github_id: int | None
    url: str | None


class Publisher(Protocol):
    async def publish(self, agent: str, outputs: Sequence[Output], event: Event) -> list[Published]: ...

    async def close(self) -> None: ...


class DryRunPublisher:
    """Without GitHub credentials: print each output as it would be posted, in order, so nothing is silently lost.

    A header says what and where; below it is what a maintainer would read on GitHub
    (a review's inline comments each under its `path:line`, a check run's title, summary
    and annotations); last, the hidden marker that makes publishing it again an edit.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    async def publish(self, agent: str, outputs: Sequence[Output], event: Event) -> list[Published]:
        stream = self.stream or sys.stdout
        for output in outputs:
            what, shown = describe(output)
            header = f"━━ [dry run] {agent}: {what} "
            print(_printable(header + "━" * max(2, RULE_WIDTH - len(header))), file=stream)
            if shown:
                print(_printable(shown), file=stream)
            print(_printable(f"   ⤷ {marker(agent, output.kind, output.key)}"), file=stream)
            print(file=stream)
        stream.flush()
        return [Published(output.kind, output.key, None, None) for output in outputs]

    async def close(self) -> None:
        return None


RULE_WIDTH = 79
# What a terminal would act on rather than show (escape sequences): shown as escapes instead.
_TERMINAL_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _printable(text: str) -> str:
    return _TERMINAL_CONTROLS.sub(lambda found: f"\\x{ord(found.group()):02x}", text.replace("\r\n", "\n"))


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def describe(output: Output) -> tuple[str, str]:
    """What an output is and where it goes (one line), and what a maintainer would read there."""
    if isinstance(output, Reaction):
        target = f"comment {output.comment_id}" if output.comment_id is not None else f"#{output.issue_number}"
        return f"reaction {output.content} on {target} in {output.repo}", ""
    if isinstance(output, Comment):
        return f"comment on {output.repo}#{output.issue_number}", output.body
    if isinstance(output, IssueReport):
        labels = f" [{', '.join(output.labels)}]" if output.labels else ""
        return f"issue in {output.repo} ({output.state}){labels}: {output.title}", output.body
    if isinstance(output, Review):
        inline = "".join(
            f"\n\n▸ {c.path}:{f'{c.start_line}-' if c.start_line and c.start_line < c.line else ''}{c.line}\n"
            + textwrap.indent(c.body, "    ")
            for c in output.comments
        )
        what = f"review {output.event} on {output.repo}#{output.pr_number} at {output.commit_sha[:7]}"
        return f"{what}, {_plural(len(output.comments), 'inline comment')}", output.body + inline
    if isinstance(output, ReviewDismissal):
        return (f"dismiss our reviews {output.review_key!r} requesting changes on {output.repo}#{output.pr_number}",
                output.message)  # fmt: skip
    if isinstance(output, CheckRun):
        annotations = "".join(
            f"\n  {a.level:<8} {a.path}:{a.start_line}{f'-{a.end_line}' if a.end_line != a.start_line else ''}"
            f"  {a.title + ': ' if a.title else ''}{a.message.splitlines()[0] if a.message else ''}"
            for a in output.annotations
        )
        what = f"check run {output.name!r} on {output.repo} at {output.head_sha[:7]}: {output.conclusion or 'in progress'}"
        shown = f"Title: {output.title}\n\n{output.summary}"
        return what, shown + (f"\nAnnotations ({len(output.annotations)}):{annotations}" if annotations else "")
    if isinstance(output, PullRequest):
        files = "".join(f"\n  {path} ({len(text.encode()):,} bytes)" for path, text in output.files.items())
        where = f"{output.branch} → {output.base or 'the default branch'}"
        return (f"pull request in {output.repo} ({where}): {output.title}",
                f"{output.body}\n\nFiles, committed as {output.commit_message!r}:{files or ' none'}")  # fmt: skip
    if isinstance(output, WorkflowDispatch):
        inputs = "\n".join(f"  {name} = {value!r}" for name, value in output.inputs.items())
        return f"workflow dispatch of {output.workflow} in {output.repo} at {output.ref or 'the default branch'}", inputs
    files = "".join(f"\n  {name} ({len(content):,} bytes)" for name, content in output.files.items())
    where = f" as an issue in {output.repo} ({output.state})" if output.repo else ""
    return f"report{where}: {output.title}", output.markdown + (f"\n\nFiles:{files}" if files else "")


class PublishError(Exception):
    """Some outputs of one publish call failed; the others were published."""

    def __init__(self, errors: list[tuple[Output, BaseException]]) -> None:
        self.errors = errors
        summary = "; ".join(f"{o.kind} {o.key}: {e.__class__.__name__}" for o, e in errors)
        super().__init__(f"{len(errors)} output(s) not published: {summary}")



# ---------------------------------------------------------------- helpers


def with_marker(body: str, hidden: str, limit: int = BODY_LIMIT) -> str:
    """`body` + the hidden marker, cut to fit GitHub's limit with the marker kept."""
    tail = f"\n\n{hidden}"
    if len(body) + len(tail) > limit:
        note = "\n\n… (truncated)"
        body = body[: limit - len(tail) - len(note)] + note
    return body + tail


def content_hash(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def blob_sha(content: bytes) -> str:
    """Git's blob id of `content`: what the contents API answers as a file's `sha`."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _split(repo: str) -> tuple[str, str]:
    from bot.github import split_repo

    return split_repo(repo)


def _status(exc: BaseException) -> int | None:
    from githubkit.exception import RequestFailed

    return exc.response.status_code if isinstance(exc, RequestFailed) else None


def _label_names(labels: Sequence[Any]) -> list[str]:
    return [label if isinstance(label, str) else label.name for label in labels if label is not None]


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


def _carries(body: str | None, hidden: str) -> bool:
    """Whether `hidden` is the marker that ends `body`."""
    found = trailing_marker(body)
    return found is not None and found.group(0) == hidden


_Where = tuple[int | None, str | None]  # github_id and url of what an output became


@dataclass(frozen=True)
class _Key:
    """What a record is found by: the installation, the repository and the marker."""

    installation_id: int
    repo: str
    marker: str


def _key(event: Event, repo: str, hidden: str) -> _Key:
    installation = event.installation_id if event.installation_id is not None else NO_INSTALLATION
    return _Key(installation, repo, hidden)


@dataclass(frozen=True)
class _Record:
    github_id: int | None
    url: str | None
    content_hash: str | None

    @property
    def where(self) -> _Where:
        return self.github_id, self.url


# ---------------------------------------------------------------- the publisher


class GitHubPublisher:
    """Publishes outputs through githubkit; one marker, one object on GitHub."""

    def __init__(self, store: Store, clients: GitHubClients) -> None:
        self.store = store
        self.clients = clients

    async def publish(self, agent: str, outputs: Sequence[Output], event: Event) -> list[Published]:
        """Publish every output; if some fail, the others still go out and PublishError says which."""
        github = self.clients.for_installation(event.installation_id) if outputs else None
        errors: list[tuple[Output, BaseException]] = []
        published: list[Published] = []
        for output in outputs:
            try:
                published.append(await self._publish_one(github, agent, output, event))
            except Exception as exc:  # noqa: BLE001 - reported below, after the others had their turn
                log.error("publish.failed", agent=agent, kind=output.kind, key=output.key,
                          delivery=event.delivery_id, error=repr(exc))
                errors.append((output, exc))
        if errors:
            raise PublishError(errors)
        return published

    async def close(self) -> None:
        await self.clients.aclose()

    async def _publish_one(self, github: GitHub[Any], agent: str, output: Output, event: Event) -> Published:
        handlers: dict[type, Callable[..., Awaitable[_Where]]] = {
            Comment: self._comment, Reaction: self._reaction, IssueReport: self._issue_report, Review: self._review,
            ReviewDismissal: self._dismiss_reviews, CheckRun: self._check_run, Report: self._report, PullRequest: self._pull_request,
            WorkflowDispatch: self._dispatch,
        }
        handler = handlers.get(type(output))
        if handler is None:  # pragma: no cover - Output is a closed union
            raise TypeError(f"unknown output {output!r}")
        github_id, url = await handler(github, agent, output, event)
        return Published(output.kind, output.key, github_id, url)

    async def _ours(self, github: GitHub[Any], found: Any) -> bool:
        """Whether an object found by its marker is ours. Anyone can paste a marker into a comment,
        an issue or a review; taking theirs for ours would keep ours from ever being posted (or,
        for a review, dismiss theirs). Where our author cannot be learnt, the marker decides."""
        author = await self.clients.author_id(github)
        return author is None or (found.user is not None and found.user.id == author)

    # -- the record

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    @staticmethod
    def _row(session: Session, key: _Key) -> PublishedOutput | None:
        return session.scalar(select(PublishedOutput).where(
            PublishedOutput.installation_id == key.installation_id, PublishedOutput.repo == key.repo,
            PublishedOutput.marker == key.marker))

    def _load_sync(self, key: _Key) -> _Record | None:
        with self.store.session() as session:
            row = self._row(session, key)
            return None if row is None else _Record(row.github_id, row.url, row.content_hash)

    async def _load(self, key: _Key) -> _Record | None:
        return await self._db(self._load_sync, key)

    def _save_sync(self, key: _Key, values: dict[str, Any]) -> None:
        def write() -> None:
            with self.store.session() as session:
                row = self._row(session, key)
                if row is None:
                    session.add(PublishedOutput(installation_id=key.installation_id, repo=key.repo, marker=key.marker,
                                                **values))
                else:
                    for name, value in values.items():
                        setattr(row, name, value)

        try:
            write()
        except IntegrityError:
            # Another worker inserted the same key between our read and our insert:
            # its row exists now, so this second pass updates it.
            write()

    async def _save(self, key: _Key, agent: str, kind: str, event: Event, *,
                    github_id: int | None, url: str | None, digest: str | None) -> None:
        values = {"agent": agent, "kind": kind, "github_id": github_id, "url": url,
                  "content_hash": digest, "delivery_id": event.delivery_id}
        await self._db(self._save_sync, key, values)

    # -- comments

    async def _comment(self, github: GitHub[Any], agent: str, output: Comment, event: Event) -> _Where:
        owner, name = _split(output.repo)
        hidden = marker(agent, output.kind, output.key)
        key = _key(event, output.repo, hidden)
        body = with_marker(output.body, hidden)
        digest = content_hash(body)
        record = await self._load(key)
        comment = None
        if record is not None and record.github_id is not None:
            if record.content_hash == digest:
                return record.where
            comment = await self._edit_comment(github, owner, name, record.github_id, body)
        if comment is None:
            found = await self._find_comment(github, owner, name, output.issue_number, hidden)
            if found is None:
                comment = (await github.rest.issues.async_create_comment(owner, name, output.issue_number, body=body)).parsed_data
            elif found.body != body:
                comment = await self._edit_comment(github, owner, name, found.id, body) or found
            else:
                comment = found
        await self._save(key, agent, output.kind, event, github_id=comment.id, url=comment.html_url, digest=digest)
        return comment.id, comment.html_url

    async def _edit_comment(self, github: GitHub[Any], owner: str, name: str, comment_id: int, body: str) -> Any:
        """The edited comment, or None when it is gone (deleted by someone)."""
        try:
            return (await github.rest.issues.async_update_comment(owner, name, comment_id, body=body)).parsed_data
        except Exception as exc:
            if _status(exc) in (404, 410):
                return None
            raise

    async def _find_comment(self, github: GitHub[Any], owner: str, name: str, number: int, hidden: str) -> Any:
        async for comment in github.rest.paginate(
            github.rest.issues.async_list_comments, owner=owner, repo=name, issue_number=number, per_page=100
        ):
            if _carries(comment.body, hidden) and await self._ours(github, comment):
                return comment
        return None

    # -- reactions

    async def _reaction(self, github: GitHub[Any], agent: str, output: Reaction, event: Event) -> _Where:
        owner, name = _split(output.repo)
        key = _key(event, output.repo, marker(agent, output.kind, output.key))
        if (record := await self._load(key)) is not None:
            return record.where
        if output.comment_id is not None:
            response = await github.rest.reactions.async_create_for_issue_comment(
                owner, name, output.comment_id, content=output.content)
        else:
            number = output.issue_number if output.issue_number is not None else event.issue_number
            if number is None:
                raise ValueError(f"reaction {output.key} names neither a comment nor an issue")
            response = await github.rest.reactions.async_create_for_issue(owner, name, number, content=output.content)
        # 201 created, 200 already there: either way it is on GitHub now.
        await self._save(key, agent, output.kind, event, github_id=response.parsed_data.id, url=None, digest=None)
        return response.parsed_data.id, None

    # -- issues (IssueReport and Report)

    async def _issue_report(self, github: GitHub[Any], agent: str, output: IssueReport, event: Event) -> _Where:
        return await self._issue(github, agent, output.kind, output.key, output.repo, output.title, output.body,
                                 output.labels, output.state, event)

    async def _report(self, github: GitHub[Any], agent: str, output: Report, event: Event) -> _Where:
        if not output.repo:  # files are written by whoever made the report, not here
            return None, None
        return await self._issue(github, agent, output.kind, output.key, output.repo, output.title,
                                 output.markdown, output.labels, output.state, event)

    async def _issue(self, github: GitHub[Any], agent: str, kind: str, key: str, repo: str, title: str,
                     body: str, labels: Sequence[str], state: str, event: Event) -> _Where:
        owner, name = _split(repo)
        hidden = marker(agent, kind, key)
        record_key = _key(event, repo, hidden)
        full_body = with_marker(body, hidden)
        labels = list(dict.fromkeys(labels))
        digest = content_hash(title, full_body, sorted(labels), state)
        record = await self._load(record_key)
        issue = None
        if record is not None and record.github_id is not None:
            if record.content_hash == digest:
                return record.where
            issue = await self._edit_issue(github, owner, name, record.github_id, title, full_body, labels, state)
        if issue is None:
            found = await self._find_issue(github, owner, name, hidden, labels)
            if found is not None:
                if (found.title == title and found.body == full_body and found.state == state
                        and set(labels) <= set(_label_names(found.labels))):
                    issue = found
                else:
                    issue = await self._edit_issue(github, owner, name, found.number, title, full_body, labels, state)
            if issue is None:
                if state == "closed":
                    log.info("publish.issue_close_skipped", kind=kind, key=key, reason="no such issue")
                    return None, None
                issue = (await github.rest.issues.async_create(
                    owner, name, title=title, body=full_body, **({"labels": labels} if labels else {})
                )).parsed_data
        await self._save(record_key, agent, kind, event, github_id=issue.number, url=issue.html_url, digest=digest)
        return issue.number, issue.html_url

    async def _edit_issue(self, github: GitHub[Any], owner: str, name: str, number: int, title: str,
                          body: str, labels: list[str], state: str) -> Any:
        """Edit title, body and state; add our labels without removing anyone else's. None if gone."""
        changes: dict[str, Any] = {"title": title, "body": body, "state": state}
        if state == "closed":
            changes["state_reason"] = "completed"
        try:
            issue = (await github.rest.issues.async_update(owner, name, number, **changes)).parsed_data
        except Exception as exc:
            if _status(exc) in (404, 410):
                return None
            raise
        present = _label_names(issue.labels)
        missing = [label for label in labels if label not in present]
        if missing:
            issue = (await github.rest.issues.async_update(owner, name, number, labels=present + missing)).parsed_data
        return issue

    async def _find_issue(self, github: GitHub[Any], owner: str, name: str, hidden: str, labels: list[str]) -> Any:
        query: dict[str, Any] = {"state": "all", "sort": "created", "direction": "desc", "per_page": 100}
        if labels:  # we always create with our labels: a narrow, exact filter
            query["labels"] = ",".join(labels)
        seen = 0
        async for issue in github.rest.paginate(github.rest.issues.async_list_for_repo, owner=owner, repo=name, **query):
            if not issue.pull_request and _carries(issue.body, hidden) and await self._ours(github, issue):
                return issue
            seen += 1
            if seen >= ISSUE_SEARCH_PAGES * 100:
                break
        return None

    # -- reviews

    async def _review(self, github: GitHub[Any], agent: str, output: Review, event: Event) -> _Where:
        owner, name = _split(output.repo)
        hidden = marker(agent, output.kind, output.key)  # in the body
        # One record per (SHA, key).
        record_key = _key(event, output.repo, marker(agent, output.kind, f"{output.key}@{output.commit_sha}"))
        if (record := await self._load(record_key)) is not None:
            return record.where
        review, leftovers = None, []
        async for existing in github.rest.paginate(
            github.rest.pulls.async_list_reviews, owner=owner, repo=name, pull_number=output.pr_number, per_page=100
        ):
            if existing.commit_id != output.commit_sha or not _carries(existing.body, hidden):
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
        await self._save(record_key, agent, output.kind, event,
                         github_id=review.id, url=review.html_url, digest=content_hash(review.body))
        return review.id, review.html_url

    async def _post_review(self, github: GitHub[Any], owner: str, name: str, output: Review, hidden: str) -> Any:
        inline: Sequence[InlineComment] = output.comments
        if inline:
            try:
                return await self._create_review(github, owner, name, output, hidden, inline)
            except Exception as exc:
                if _status(exc) != 422:
                    raise
            # One anchor outside the diff fails the whole review, and GitHub does not say
            # which: keep the comments that anchor inline, list only the others in the body.
            anchored = await self._anchorable(github, owner, name, output, hidden)
            inline = anchored or ()
            log.warning("publish.review_inline_rejected", repo=output.repo, pr=output.pr_number,
                        comments=len(output.comments), moved=len(output.comments) - len(inline),
                        probes_sufficed=anchored is not None)
        return await self._create_review(github, owner, name, output, hidden, inline)

    async def _create_review(self, github: GitHub[Any], owner: str, name: str, output: Review, hidden: str,
                             inline: Sequence[InlineComment]) -> Any:
        """The review with `inline` on the diff; its other comments are listed in the body."""
        moved = [c for c in output.comments if c not in inline]
        body = with_marker(output.body + (_unanchored(moved) if moved else ""), hidden)
        comments = {"comments": [_inline(c) for c in inline]} if inline else {}
        return (await github.rest.pulls.async_create_review(
            owner, name, output.pr_number, commit_id=output.commit_sha, body=body, event=output.event, **comments,
        )).parsed_data

    async def _anchorable(self, github: GitHub[Any], owner: str, name: str, output: Review,
                          hidden: str) -> list[InlineComment] | None:
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

    async def _probe_review(self, github: GitHub[Any], owner: str, name: str, output: Review, hidden: str,
                            comments: Sequence[InlineComment]) -> bool:
        """Do all `comments` anchor? A pending review (no `event`) is checked as a real one,
        and is deleted at once: GitHub allows one pending review per user and pull request."""
        pending = None
        try:
            pending = (await github.rest.pulls.async_create_review(
                owner, name, output.pr_number, commit_id=output.commit_sha, body=with_marker(PROBE_BODY, hidden),
                comments=[_inline(c) for c in comments],
            )).parsed_data
            return True
        except Exception as exc:
            if _status(exc) == 422:
                return False
            raise
        finally:
            if pending is not None:
                await github.rest.pulls.async_delete_pending_review(owner, name, output.pr_number, pending.id)

    async def _dismiss_reviews(self, github: GitHub[Any], agent: str, output: ReviewDismissal, event: Event) -> _Where:
        # Nothing is recorded: a review's state on GitHub says whether it is dismissed already.
        owner, name = _split(output.repo)
        hidden = marker(agent, Review.kind, output.review_key)
        stale = [
            review.id
            async for review in github.rest.paginate(
                github.rest.pulls.async_list_reviews, owner=owner, repo=name, pull_number=output.pr_number, per_page=100
            )
            if review.state == "CHANGES_REQUESTED" and _carries(review.body, hidden) and await self._ours(github, review)
        ]
        for review_id in stale:
            try:
                await github.rest.pulls.async_dismiss_review(owner, name, output.pr_number, review_id,
                                                             message=output.message, event="DISMISS")
            except Exception as exc:
                if _status(exc) != 422:
                    raise
                log.info("publish.review_not_dismissed", repo=output.repo, pr=output.pr_number, review=review_id,
                         reason="no longer requesting changes")  # dismissed by someone since we looked
        if stale:
            log.info("publish.reviews_dismissed", repo=output.repo, pr=output.pr_number, reviews=len(stale))
        return None, None

    # -- check runs

    async def _check_run(self, github: GitHub[Any], agent: str, output: CheckRun, event: Event) -> _Where:
        owner, name = _split(output.repo)
        hidden = marker(agent, output.kind, output.key)
        external_id = f"waooaw:{agent}:{output.key}"
        summary = with_marker(output.summary, hidden, SUMMARY_LIMIT)
        annotations = [
            {"path": a.path, "start_line": a.start_line, "end_line": a.end_line, "annotation_level": a.level,
             "message": a.message, **({"title": a.title} if a.title else {})}
            for a in output.annotations
        ]
        # Two halves: the whole output, and the annotations alone. GitHub appends the
        # annotations of every update, so unchanged ones are not sent again.
        annotations_digest = content_hash(annotations)[:32]
        digest = content_hash(output.title, summary, output.conclusion, annotations)[:32] + annotations_digest
        key = _key(event, output.repo, hidden)
        record = await self._load(key)
        if record is not None and record.content_hash == digest:
            return record.where
        run_id = record.github_id if record is not None else None
        send_annotations = True
        if run_id is None:
            run_id = await self._find_check_run(github, owner, name, output, external_id)
        elif record is not None and (record.content_hash or "")[32:] == annotations_digest:
            send_annotations = False
        batches = [annotations[i:i + ANNOTATIONS_PER_REQUEST] for i in range(0, len(annotations), ANNOTATIONS_PER_REQUEST)]
        if not send_annotations or not batches:
            batches = [[]]
        final: dict[str, Any] = (
            {"status": "completed", "conclusion": output.conclusion} if output.conclusion else {"status": "in_progress"}
        )

        def output_with(batch: list[dict[str, Any]]) -> dict[str, Any]:
            return {"title": output.title, "summary": summary, **({"annotations": batch} if batch else {})}

        if run_id is None:
            first = batches.pop(0)
            status = final if not batches else {"status": "in_progress"}
            run = (await github.rest.checks.async_create(
                owner, name, name=output.name, head_sha=output.head_sha, external_id=external_id,
                output=output_with(first), **status,
            )).parsed_data
        for index, batch in enumerate(batches):
            status = final if index == len(batches) - 1 else {}
            run = (await github.rest.checks.async_update(
                owner, name, run_id if run_id is not None else run.id, output=output_with(batch), **status
            )).parsed_data
        await self._save(key, agent, output.kind, event, github_id=run.id, url=run.html_url, digest=digest)
        return run.id, run.html_url

    async def _find_check_run(self, github: GitHub[Any], owner: str, name: str, output: CheckRun,
                              external_id: str) -> int | None:
        # Only our App's runs: another App on the repo may use the same name and external id.
        mine = {"app_id": self.clients.app_id} if self.clients.app_id is not None else {}
        response = await github.rest.checks.async_list_for_ref(
            owner, name, output.head_sha, check_name=output.name, filter_="all", per_page=100, **mine)
        for run in response.parsed_data.check_runs:
            if run.external_id == external_id:
                return run.id
        return None

    # -- pull requests

    async def _pull_request(self, github: GitHub[Any], agent: str, output: PullRequest, event: Event) -> _Where:
        owner, name = _split(output.repo)
        hidden = marker(agent, output.kind, output.key)
        body = with_marker(output.body, hidden)
        files = {path: text.encode() for path, text in output.files.items()}
        # Two halves, as for check runs: the PR's title and body, and what goes on the branch.
        pull_digest = content_hash(output.title, body)[:32]
        digest = pull_digest + content_hash(output.branch, output.base, {p: blob_sha(c) for p, c in files.items()})[:32]
        key = _key(event, output.repo, hidden)
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
            number, url = await self._upsert_pull(github, owner, name, output, base, body, hidden,
                                                  record.github_id if record is not None else None)
        await self._save(key, agent, output.kind, event, github_id=number, url=url, digest=digest)
        return number, url

    async def _upsert_pull(self, github: GitHub[Any], owner: str, name: str, output: PullRequest, base: str,
                           body: str, hidden: str, number: int | None) -> _Where:
        """Open the PR, or bring its title and body up to date: by its recorded number, else found by branch."""
        pull = None
        if number is not None:
            pull = await self._edit_pull(github, owner, name, number, output.title, body)
        if pull is None:
            pull = (await self._find_pull(github, owner, name, output.branch, hidden)
                    or await self._create_pull(github, owner, name, output, base, body, hidden))
            if pull.title != output.title or pull.body != body:
                pull = await self._edit_pull(github, owner, name, pull.number, output.title, body) or pull
        return pull.number, pull.html_url

    async def _default_branch(self, github: GitHub[Any], owner: str, name: str) -> str:
        return (await github.rest.repos.async_get(owner, name)).parsed_data.default_branch

    async def _ensure_branch(self, github: GitHub[Any], owner: str, name: str, branch: str, base: str) -> None:
        try:
            await github.rest.git.async_get_ref(owner, name, f"heads/{branch}")
            return
        except Exception as exc:
            if _status(exc) != 404:
                raise
        base_sha = (await github.rest.git.async_get_ref(owner, name, f"heads/{base}")).parsed_data.object_.sha
        try:
            await github.rest.git.async_create_ref(owner, name, ref=f"refs/heads/{branch}", sha=base_sha)
        except Exception as exc:
            # Another worker created it between our look and our create: it exists, which is all we need.
            if _status(exc) != 422 or "already exists" not in exc.response.text:  # type: ignore[attr-defined]
                raise

    async def _commit_file(self, github: GitHub[Any], owner: str, name: str, branch: str, path: str,
                           content: bytes, message: str) -> None:
        """Commit `content` to `path` on `branch` unless it is there already (same blob id)."""
        try:
            current = (await github.rest.repos.async_get_content(owner, name, path, ref=branch)).parsed_data
        except Exception as exc:
            if _status(exc) != 404:
                raise
            current = None
        if isinstance(current, list):
            raise ValueError(f"{path} is a directory on {owner}/{name}@{branch}, not a file")
        if current is not None and current.sha == blob_sha(content):
            return
        await github.rest.repos.async_create_or_update_file_contents(
            owner, name, path, message=message, content=base64.b64encode(content).decode(), branch=branch,
            **({"sha": current.sha} if current is not None else {}),
        )

    async def _find_pull(self, github: GitHub[Any], owner: str, name: str, branch: str, hidden: str) -> Any:
        """The open PR from `branch`: ours (marker) first, else any — the branch is ours either way."""
        pulls = (await github.rest.pulls.async_list(owner, name, head=f"{owner}:{branch}", state="open",
                                                    per_page=100)).parsed_data
        return next((p for p in pulls if _carries(p.body, hidden)), pulls[0] if pulls else None)

    async def _create_pull(self, github: GitHub[Any], owner: str, name: str, output: PullRequest, base: str,
                           body: str, hidden: str) -> Any:
        try:
            return (await github.rest.pulls.async_create(
                owner, name, title=output.title, head=output.branch, base=base, body=body)).parsed_data
        except Exception as exc:
            # Another worker opened it since we looked: use that one.
            if _status(exc) == 422 and (found := await self._find_pull(github, owner, name, output.branch, hidden)):
                return found
            raise

    async def _edit_pull(self, github: GitHub[Any], owner: str, name: str, number: int, title: str, body: str) -> Any:
        """The edited PR, or None when it is gone."""
        try:
            return (await github.rest.pulls.async_update(owner, name, number, title=title, body=body)).parsed_data
        except Exception as exc:
            if _status(exc) in (404, 410):
                return None
            raise

    # -- workflow dispatches

    async def _dispatch(self, github: GitHub[Any], agent: str, output: WorkflowDispatch, event: Event) -> _Where:
        owner, name = _split(output.repo)
        key = _key(event, output.repo, marker(agent, output.kind, output.key))
        # A dispatch leaves nothing on GitHub that could carry a marker, so unlike the other
        # kinds there is nothing to search in the crash window: the record is the only memory.
        # A crash between GitHub's 204 and the record dispatches once more on redelivery.
        if await self._load(key) is not None:
            return None, None
        ref = output.ref or await self._default_branch(github, owner, name)
        await github.rest.actions.async_create_workflow_dispatch(owner, name, output.workflow, ref=ref,
                                                                 inputs=dict(output.inputs))
        await self._save(key, agent, output.kind, event, github_id=None, url=None,
                         digest=content_hash(output.workflow, ref, output.inputs))
        return None, None
