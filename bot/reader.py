"""`RepoReader` over githubkit: what agents may read from GitHub, for one installation."""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from githubkit.exception import RequestFailed

from agents.context.documents import split_repo
from agents.vision.globs import matches_any
from bot.git_reader import file_text
from bot.github import GitHubClients

DIFF = {"Accept": "application/vnd.github.diff"}
ISSUE_COMMENTS = 30  # the latest comments an issue is read with
PER_PAGE = 100
MAX_PAGES = 10  # the most pages any list is read to
MAX_LABELS = 300
RELEASE_BODY_CHARS = 10_000
SEARCH_WORDS = 6
STOPWORDS = frozenset(
    "the and for with from that this when not are was can but has have into does doesn after before".split()
)

log = structlog.get_logger(__name__)


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

    async def comment_reactions(self, repo: str, comment_id: int) -> list[dict[str, Any]] | None:
        owner, name = split_repo(repo)
        github = self.clients.for_installation(self.installation_id)
        try:
            found = await _listed(
                github.rest.reactions.async_list_for_issue_comment, owner, name, comment_id, cap=PER_PAGE * MAX_PAGES
            )
        except RequestFailed as exc:
            if exc.response.status_code == 404:
                return None  # the comment is gone
            raise
        return [
            {
                "id": r.id,
                "content": r.content,
                "user": None if r.user is None else {"id": r.user.id, "login": r.user.login, "type": r.user.type},
            }
            for r in found
        ]

    async def written_by_us(self, item: dict[str, Any]) -> bool:
        # As the publisher tells its own objects apart: our App's id, else our author's user id.
        via = (item.get("performed_via_github_app") or {}).get("id")
        if via is not None and via == self.clients.app_id:
            return True
        author = await self.clients.author_id(self.clients.for_installation(self.installation_id))
        return author is not None and (item.get("user") or {}).get("id") == author

    async def issue_with_comments(self, repo: str, number: int) -> dict[str, Any]:
        owner, name = split_repo(repo)
        github = self.clients.for_installation(self.installation_id)
        issue = (await github.rest.issues.async_get(owner, name, number)).parsed_data
        # Comments are listed oldest first: the last 30 are on the last page or two of 30.
        last = -(-issue.comments // ISSUE_COMMENTS)
        comments: list[Any] = []
        for page in (last - 1, last) if issue.comments % ISSUE_COMMENTS else (last,):
            if page >= 1:
                response = await github.rest.issues.async_list_comments(
                    owner, name, number, per_page=ISSUE_COMMENTS, page=page
                )
                comments.extend(response.parsed_data)
        return {
            "number": issue.number,
            "title": issue.title,
            "body": issue.body or "",
            "user": _login(issue.user),
            "labels": [label if isinstance(label, str) else _text_of(label.name) for label in issue.labels],
            "state": issue.state,
            "url": issue.html_url,
            "comments": [{"user": _login(c.user), "body": c.body or ""} for c in comments[-ISSUE_COMMENTS:]],
        }

    async def default_branch_files(
        self, repo: str, globs: Sequence[str], max_bytes: int, max_files: int
    ) -> dict[str, str]:
        owner, name = split_repo(repo)
        branch = await self._default_branch(repo)
        # The tree and each file are read conditionally: while the branch stands still they cost nothing.
        try:
            tree = await self.clients.get_json_again(
                self.installation_id, f"/repos/{owner}/{name}/git/trees/{branch}", {"recursive": "1"}
            )
        except RequestFailed as exc:
            if exc.response.status_code in (404, 409):  # 409: an empty repository has no tree
                return {}
            raise
        if tree.get("truncated"):
            log.warning("github.tree_truncated", repo=repo, branch=branch)
        blobs = sorted(
            (entry["path"], entry.get("size") or 0)
            for entry in tree.get("tree") or []
            if entry.get("type") == "blob" and matches_any(entry["path"], globs)
        )
        files: dict[str, str] = {}
        for path, size in blobs:
            if len(files) >= max_files:
                break
            if size > max_bytes:
                continue
            data = await self.file_at(repo, branch, path)
            text = file_text(data, max_bytes) if data is not None else None
            if text is not None:
                files[path] = text
        return files

    async def search_issues(
        self, repo: str, text: str, limit: int, state: str, *, exclude: Collection[int] = ()
    ) -> list[dict[str, Any]]:
        if state not in ("open", "closed", "all"):
            raise ValueError(f"state is open, closed or all, not {state!r}")
        words = search_words(text)
        if not words or limit <= 0:
            return []
        query = f"repo:{repo} is:issue" + ("" if state == "all" else f" is:{state}") + " " + " OR ".join(words)
        github = self.clients.for_search(self.installation_id)  # its quota is apart (30 calls a minute)
        response = await github.rest.search.async_issues_and_pull_requests(
            q=query, per_page=min(limit + len(exclude), 100)
        )
        found = [item for item in response.parsed_data.items if item.number not in exclude]
        return [
            {"number": item.number, "title": item.title, "state": item.state, "url": item.html_url}
            for item in found[:limit]
        ]

    async def issues(
        self, repo: str, labels: Sequence[str], state: str, limit: int, updated_before_days: int | None = None
    ) -> list[dict[str, Any]]:
        if state not in ("open", "closed", "all"):
            raise ValueError(f"state is open, closed or all, not {state!r}")
        owner, name = split_repo(repo)
        github = self.clients.for_installation(self.installation_id)
        before = None if updated_before_days is None else datetime.now(UTC) - timedelta(days=updated_before_days)
        params: dict[str, Any] = {"state": state, "sort": "updated", "direction": "asc"}
        if labels:
            params["labels"] = ",".join(labels)
        found = await _listed(
            functools.partial(github.rest.issues.async_list_for_repo, **params),
            owner,
            name,
            cap=limit,
            # GitHub lists pull requests among issues; `before`: not updated since
            keep=lambda i: not i.pull_request and (before is None or i.updated_at < before),
        )
        return [
            {
                "number": i.number,
                "title": i.title,
                "state": i.state,
                "labels": [label if isinstance(label, str) else _text_of(label.name) for label in i.labels],
                "user": _login(i.user),
                "updated_at": _iso(i.updated_at),
                "created_at": _iso(i.created_at),
                "url": i.html_url,
                "comments": i.comments,
            }
            for i in found
        ]

    async def labels(self, repo: str) -> list[str]:
        owner, name = split_repo(repo)
        github = self.clients.for_installation(self.installation_id)
        found = await _listed(github.rest.issues.async_list_labels_for_repo, owner, name, cap=MAX_LABELS)
        return [label.name for label in found]

    async def releases(self, repo: str, limit: int) -> list[dict[str, Any]]:
        owner, name = split_repo(repo)
        github = self.clients.for_installation(self.installation_id)
        published = await _listed(
            github.rest.repos.async_list_releases, owner, name, cap=limit, keep=lambda r: r.published_at is not None
        )
        return [_release(release) for release in published]

    async def merged_pulls_since_release(
        self, repo: str, limit: int, *, release_tag: str | None = None
    ) -> list[dict[str, Any]]:
        owner, name = split_repo(repo)
        github = self.clients.for_installation(self.installation_id)
        since, until = await self._release_window(repo, release_tag)
        merged: list[Any] = []
        for page in range(1, MAX_PAGES + 1):
            batch = await _page(
                github.rest.pulls.async_list, owner, name, page=page, state="closed", sort="updated", direction="desc"
            )
            merged.extend(
                p
                for p in batch
                if p.merged_at is not None
                and (since is None or p.merged_at > since)
                and (until is None or p.merged_at <= until)
            )
            merged.sort(key=lambda p: p.merged_at, reverse=True)
            del merged[limit:]
            # Listed by last update, which is never before the merge: once a page ends before the
            # release (or before the oldest of the newest `limit` merges), no later page holds one.
            floor = merged[-1].merged_at if len(merged) >= limit else since
            if len(batch) < PER_PAGE or (floor is not None and batch[-1].updated_at < floor):
                break
        return [
            {
                "number": p.number,
                "title": p.title,
                "user": _login(p.user),
                "merged_at": _iso(p.merged_at),
                "url": p.html_url,
                "labels": [label.name for label in p.labels],
            }
            for p in merged
        ]

    async def contributors(self, repo: str, limit: int) -> list[dict[str, Any]]:
        owner, name = split_repo(repo)
        github = self.clients.for_installation(self.installation_id)
        found = await _listed(github.rest.repos.async_list_contributors, owner, name, cap=limit)
        return [{"login": _text_of(c.login), "contributions": c.contributions, "type": c.type} for c in found]

    async def stargazers(self, repo: str, limit: int) -> list[dict[str, Any]]:
        # GitHub lists the oldest first: the newest are on the last pages, read from the end back.
        owner, name = split_repo(repo)
        github = self.clients.for_installation(self.installation_id)
        count = (await github.rest.repos.async_get(owner, name)).parsed_data.stargazers_count
        last = -(-count // PER_PAGE)
        users: list[Any] = []
        for page in range(last, max(last - MAX_PAGES, 0), -1):
            if len(users) >= limit:
                break
            users.extend(
                reversed(await _page(github.rest.activity.async_list_stargazers_for_repo, owner, name, page=page))
            )
        return [{"login": _text_of(user.login), "type": _text_of(user.type)} for user in users[:limit]]

    async def _default_branch(self, repo: str) -> str:
        owner, name = split_repo(repo)
        found = await self.clients.get_json_again(self.installation_id, f"/repos/{owner}/{name}", {})
        return str(found["default_branch"])

    async def _release_window(self, repo: str, tag: str | None) -> tuple[datetime | None, datetime | None]:
        """Merges after the latest release (no end); with `tag`, those of that release: after the release
        before it, up to its own publication (a release event's own release is the latest already)."""
        owner, name = split_repo(repo)
        github = self.clients.for_installation(self.installation_id)
        if tag is None:
            try:
                release = (await github.rest.repos.async_get_latest_release(owner, name)).parsed_data
            except RequestFailed as exc:
                if exc.response.status_code == 404:
                    return None, None  # no release yet
                raise
            return release.published_at or release.created_at, None
        published = await _listed(
            github.rest.repos.async_list_releases, owner, name, cap=PER_PAGE, keep=lambda r: r.published_at is not None
        )
        published.sort(key=lambda r: r.published_at, reverse=True)
        for index, release in enumerate(published):
            if release.tag_name == tag:
                before = published[index + 1].published_at if index + 1 < len(published) else None
                return before, release.published_at
        return None, None  # not published (a draft): every recent merge

    async def _text(self, path: str) -> str:
        github = self.clients.for_installation(self.installation_id)
        response = await github.arequest("GET", path, headers=DIFF)
        return response.text


async def _page(call: Callable[..., Awaitable[Any]], *args: Any, page: int, **params: Any) -> list[Any]:
    """One page of a githubkit list call, as validated models ([] for GitHub's 204 of an empty repository)."""
    response = await call(*args, per_page=PER_PAGE, page=page, **params)
    return [] if response.status_code == 204 else list(response.parsed_data)


async def _listed(
    call: Callable[..., Awaitable[Any]], *args: Any, cap: int, keep: Callable[[Any], bool] = lambda _: True
) -> list[Any]:
    """The first `cap` items a list call answers that `keep`, read page by page (at most MAX_PAGES)."""
    found: list[Any] = []
    for page in range(1, MAX_PAGES + 1):
        if len(found) >= cap:
            break
        batch = await _page(call, *args, page=page)
        found.extend(item for item in batch if keep(item))
        if len(batch) < PER_PAGE:
            break
    return found[:cap]


def search_words(text: str) -> list[str]:
    """The words a similar issue is searched by: the longest few of `text`, in its order, as plain
    terms (a title's `label:x` or quotes do not become qualifiers), joined by OR, which GitHub allows
    five of in one query."""
    words = list(dict.fromkeys(word.lower() for word in re.findall(r"\w{3,}", text) if word.lower() not in STOPWORDS))
    kept = set(sorted(words, key=len, reverse=True)[:SEARCH_WORDS])
    return [word for word in words if word in kept]


def _login(user: Any) -> str | None:
    return _text_of(getattr(user, "login", None)) if user is not None else None


def _text_of(value: object) -> str | None:
    """A githubkit field that may be Missing (UNSET) or None, as str or None."""
    return value if isinstance(value, str) else None


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment is not None else None


def _release(release: Any) -> dict[str, Any]:
    body = release.body or ""
    return {
        "tag": release.tag_name,
        "name": release.name or release.tag_name,
        "published_at": _iso(release.published_at),
        "url": release.html_url,
        "body": body[:RELEASE_BODY_CHARS],
    }
