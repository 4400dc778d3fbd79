"""What the runtime fetches for a spec before the model sees anything: its `reads`, through the RepoReader.

Each read becomes one template variable of the same name, in the shapes the RepoReader
returns (agents/ports.py). A read whose `when` is false on the event is not made: its
variable is its empty value (`EMPTY`). Reads that need GitHub and have no reader (no
credentials) raise CannotRead: the agent says so and does nothing, rather than answer without them.
`payload_reads` is what `waooaw agents test` starts from: the issue or pull request from
the example's payload, every other read empty until the example's `given` fills it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Mapping
from typing import Any

import structlog

from agents.events import Event
from agents.factory.run import event_values
from agents.factory.spec import AgentSpec, ReadItem
from agents.factory.templates import evaluate, render
from agents.ports import RepoReader

log = structlog.get_logger(__name__)

PATCH_MAX = 3000  # characters of one file's patch in `pull_request.files`
COMMENTS_MAX = 30
_WORD = re.compile(r"[\w-]{3,}")
SEARCH_WORDS = 8  # words of a title a similar-issues search looks for

EMPTY: dict[str, Any] = {
    "issue": None,
    "pull_request": None,
    "files": {},
    "similar_issues": [],
    "issues": [],
    "labels": [],
    "releases": [],
    "merged_pulls": [],
    "contributors": [],
    "stargazers": [],
    "context": {},
}


class CannotRead(Exception):
    """The spec's reads need GitHub, and there is no reader for this event."""


async def gather_reads(
    spec: AgentSpec, event: Event, reader: RepoReader | None, context: Mapping[str, Any]
) -> dict[str, Any]:
    """Every read of the spec the event needs, fetched together; the skipped ones empty."""
    values = skipped_reads(spec, event)
    made = [item for item in spec.reads if item.variable not in values]
    github = [item for item in made if item.kind != "context"]
    if github and (reader is None or event.repo is None):
        why = "the event names no repository" if event.repo is None else "there are no GitHub credentials"
        raise CannotRead(f"{spec.name} reads {', '.join(item.kind for item in github)} from GitHub, and {why}")
    if any(item.context for item in made):
        values["context"] = dict(context)
    if github:
        assert reader is not None and event.repo is not None
        fetched = await asyncio.gather(*(_read(spec, item, event, reader, event.repo) for item in github))
        values.update(zip((item.variable for item in github), fetched, strict=True))
    return values


def skipped_reads(spec: AgentSpec, event: Event) -> dict[str, Any]:
    """The reads whose `when` is false on the event, each as its variable's empty value: they are not made.

    A `when` the event cannot evaluate keeps its read (and is logged): a call spent is better than
    a run on data missing, such as a summary saying there are no leads."""
    values = event_values(spec, event)
    skipped: dict[str, Any] = {}
    for item in spec.reads:
        if item.when is None:
            continue
        try:
            wanted = evaluate(item.when, values)
        except Exception as exc:  # noqa: BLE001 — any failure of the author's expression on this event
            log.warning(
                "spec_agent.read_when_failed",
                agent=spec.name,
                delivery=event.delivery_id,
                read=item.variable,
                problem=f"{type(exc).__name__}: {exc}",
            )
            continue
        if not wanted:
            skipped[item.variable] = EMPTY[item.kind]
    return skipped


def _read(spec: AgentSpec, item: ReadItem, event: Event, reader: RepoReader, repo: str) -> Awaitable[Any]:
    if item.issue:
        return _issue(reader, repo, event.issue_number)
    if item.pull_request:
        return _pull_request(reader, repo, pull_number(event))
    if item.files is not None:
        return reader.default_branch_files(repo, item.files.paths, item.files.max_bytes, item.files.max_files)
    if item.similar_issues is not None:
        return _similar(reader, repo, event, item.similar_issues.limit, item.similar_issues.state)
    if item.issues is not None:
        wanted = item.issues
        return reader.issues(repo, wanted.labels, wanted.state, wanted.limit, wanted.updated_before_days)
    if item.labels:
        return _sorted(reader.labels(repo))
    if item.releases is not None:
        return reader.releases(repo, item.releases.limit)
    if item.merged_pulls is not None:
        release = release_of(spec, item, event)
        return reader.merged_pulls_since_release(repo, item.merged_pulls.limit, release_tag=release)
    if item.contributors is not None:
        return reader.contributors(repo, item.contributors.limit)
    assert item.stargazers is not None
    return reader.stargazers(repo, item.stargazers.limit)


def release_of(spec: AgentSpec, item: ReadItem, event: Event) -> str | None:
    """The release whose merges a `merged_pulls` read reads: the one its `release` template names (a handoff
    carries it in the message's body), else a release event's own (the latest release is that one already
    on its own event: its merges are those before it); None: the merges since the latest release."""
    assert item.merged_pulls is not None
    if item.merged_pulls.release is not None:
        named = render(item.merged_pulls.release, event_values(spec, event)).strip()
        if named:
            return named
    if event.name == "release":
        tag = (event.payload.get("release") or {}).get("tag_name")
        return str(tag) if tag else None
    return None


async def _sorted(names: Awaitable[list[str]]) -> list[str]:
    """Names in one order whatever order GitHub lists them in: the same repository, the same prompt (and cache key)."""
    return sorted(await names)


async def _issue(reader: RepoReader, repo: str, number: int | None) -> dict[str, Any] | None:
    return None if number is None else await reader.issue_with_comments(repo, number)


async def _pull_request(reader: RepoReader, repo: str, number: int | None) -> dict[str, Any] | None:
    if number is None:
        return None
    pull, files = await asyncio.gather(reader.pull_request(repo, number), reader.pull_request_files(repo, number))
    return pull_request_view(pull, files)


async def _similar(reader: RepoReader, repo: str, event: Event, limit: int, state: str) -> list[dict[str, Any]]:
    words = _WORD.findall(_subject(event).get("title") or "")[:SEARCH_WORDS]
    if not words:
        return []
    found = await reader.search_issues(repo, " ".join(words), limit + 1, state)
    return [item for item in found if item.get("number") != event.issue_number][:limit]


# ------------------------------------------------------------------ shapes


def _subject(event: Event) -> dict[str, Any]:
    """The event's issue or pull request as the payload holds it ({} when none)."""
    for key in ("issue", "pull_request"):
        value = event.payload.get(key)
        if isinstance(value, dict):
            return value
    return {}


def pull_number(event: Event) -> int | None:
    """The pull request of the event: a pull_request event's, or the PR an issue comment is on."""
    if isinstance(event.payload.get("pull_request"), dict):
        return event.issue_number
    issue = event.payload.get("issue")
    if isinstance(issue, dict) and issue.get("pull_request"):
        return event.issue_number
    return None


def _login(value: Any) -> str | None:
    return value.get("login") if isinstance(value, dict) else None


def issue_view(issue: Mapping[str, Any], comments: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An issue (or a PR, as an issue) as the `issue` read shapes it, from a payload's or the API's object."""
    return {
        "number": issue.get("number"),
        "title": issue.get("title") or "",
        "body": issue.get("body") or "",
        "user": _login(issue.get("user")),
        "labels": [label.get("name") for label in issue.get("labels") or [] if isinstance(label, dict)],
        "state": issue.get("state"),
        "url": issue.get("html_url"),
        "comments": (comments or [])[-COMMENTS_MAX:],
    }


def pull_request_view(pull: Mapping[str, Any], files: list[dict[str, Any]]) -> dict[str, Any]:
    def ref(side: Any) -> str | None:
        return side.get("ref") if isinstance(side, dict) else None

    return {
        "number": pull.get("number"),
        "title": pull.get("title") or "",
        "body": pull.get("body") or "",
        "user": _login(pull.get("user")),
        "base": ref(pull.get("base")),
        "head": ref(pull.get("head")),
        "merged": bool(pull.get("merged")),
        "files": [
            {
                "path": item.get("filename"),
                "status": item.get("status"),
                "additions": item.get("additions", 0),
                "deletions": item.get("deletions", 0),
                "patch": (item.get("patch") or "")[:PATCH_MAX],
            }
            for item in files
        ],
    }


def payload_reads(spec: AgentSpec, event: Event) -> dict[str, Any]:
    """The reads as far as the payload alone tells them: what `agents test` starts from."""
    values = {item.variable: EMPTY[item.kind] for item in spec.reads}
    if "issue" in values and (issue := _subject(event)):
        values["issue"] = issue_view(issue)
    pull = event.payload.get("pull_request")
    if "pull_request" in values and isinstance(pull, dict):
        values["pull_request"] = pull_request_view(pull, [])
    return values
