"""Issues (IssueReport and Report), found again by their marker."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import structlog

from agents.context.documents import split_repo
from agents.outputs import IssueReport, Report, marker
from bot.publish.common import Origin, carries, content_hash, status_of, with_marker
from bot.publish.records import PublishingBase, Where, key_for

if TYPE_CHECKING:
    from githubkit import GitHub

ISSUE_SEARCH_PAGES = 5  # newest 500 issues: where a crash-window issue would be

log = structlog.get_logger(__name__)


def _label_names(labels: Sequence[Any]) -> list[str]:
    return [label if isinstance(label, str) else label.name for label in labels if label is not None]


class IssuePublishing(PublishingBase):
    """Issues (IssueReport and Report), found again by their marker."""

    async def _issue_report(self, github: GitHub[Any], agent: str, output: IssueReport, origin: Origin) -> Where:
        return await self._issue(
            github,
            agent,
            output.kind,
            output.key,
            output.repo,
            output.title,
            output.body,
            output.labels,
            output.state,
            origin,
        )

    async def _report(self, github: GitHub[Any], agent: str, output: Report, origin: Origin) -> Where:
        if not output.repo:  # files are written by whoever made the report, not here
            return None, None
        return await self._issue(
            github,
            agent,
            output.kind,
            output.key,
            output.repo,
            output.title,
            output.markdown,
            output.labels,
            output.state,
            origin,
        )

    async def _issue(
        self,
        github: GitHub[Any],
        agent: str,
        kind: str,
        key: str,
        repo: str,
        title: str,
        body: str,
        labels: Sequence[str],
        state: str,
        origin: Origin,
    ) -> Where:
        owner, name = split_repo(repo)
        hidden = marker(agent, kind, key)
        record_key = key_for(origin, repo, hidden)
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
                if (
                    found.title == title
                    and found.body == full_body
                    and found.state == state
                    and set(labels) <= set(_label_names(found.labels))
                ):
                    issue = found
                else:
                    issue = await self._edit_issue(github, owner, name, found.number, title, full_body, labels, state)
            if issue is None:
                if state == "closed":
                    log.info("publish.issue_close_skipped", kind=kind, key=key, reason="no such issue")
                    return None, None
                optional: dict[str, Any] = {"labels": labels} if labels else {}
                issue = (
                    await github.rest.issues.async_create(owner, name, title=title, body=full_body, **optional)
                ).parsed_data
        await self._save(record_key, agent, kind, origin, github_id=issue.number, url=issue.html_url, digest=digest)
        return issue.number, issue.html_url

    async def _edit_issue(
        self,
        github: GitHub[Any],
        owner: str,
        name: str,
        number: int,
        title: str,
        body: str,
        labels: list[str],
        state: str,
    ) -> Any:
        """Edit title, body and state; add our labels without removing anyone else's. None if gone."""
        changes: dict[str, Any] = {"title": title, "body": body, "state": state}
        if state == "closed":
            changes["state_reason"] = "completed"
        try:
            issue = (await github.rest.issues.async_update(owner, name, number, **changes)).parsed_data
        except Exception as exc:
            if status_of(exc) in (404, 410):
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
        async for issue in github.rest.paginate(
            github.rest.issues.async_list_for_repo, owner=owner, repo=name, **query
        ):
            if not issue.pull_request and carries(issue.body, hidden) and await self._ours(github, issue):
                return issue
            seen += 1
            if seen >= ISSUE_SEARCH_PAGES * 100:
                break
        return None
