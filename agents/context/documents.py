"""Names of contexts and the JSON documents the Context API and ContextClient exchange.

One place builds each document, so a version served from the database, from the
cache or through the in-process client is the same, byte for byte.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agents.context.errors import InvalidRequest
from agents.context.models import ContextVersion, Handoff
from agents.context.repository import ContextKey

# GitHub's owner and repository names; agents and scopes may hold anything but "/" and controls.
_GITHUB_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_SEGMENT = re.compile(r"^[^/\x00-\x1f\x7f]+$")
AGENT_MAX, SCOPE_MAX = 64, 256
# Text from outside holds no control characters: PostgreSQL's text cannot hold U+0000 at all,
# and the others have no place in a name, tag or filter. Prose (a summary) keeps tab and line breaks.
_CONTROLS, _CONTROLS_IN_PROSE = r"\x00-\x1f\x7f", r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f"
NO_CONTROLS, PROSE = f"^[^{_CONTROLS}]*$", f"^[^{_CONTROLS_IN_PROSE}]*$"  # as the OpenAPI schema states them
_CONTROL, _CONTROL_IN_PROSE = re.compile(f"[{_CONTROLS}]"), re.compile(f"[{_CONTROLS_IN_PROSE}]")
# The largest values the store's columns hold: a version is an INTEGER, a row id a BIGINT.
VERSION_MAX, ID_MAX = 2**31 - 1, 2**63 - 1


def check_text(kind: str, value: str, *, prose: bool = False) -> str:
    """Any text that comes from outside: refused (InvalidRequest) if it holds a control character."""
    found = (_CONTROL_IN_PROSE if prose else _CONTROL).search(value)
    if found is not None:
        allowed = " (tab and line breaks are allowed)" if prose else ""
        raise InvalidRequest(f"{kind} holds the control character U+{ord(found.group()):04X}: remove it{allowed}")
    return value


def check_github_name(kind: str, value: str) -> str:
    if not _GITHUB_NAME.match(value) or value in (".", ".."):
        raise InvalidRequest(f"invalid {kind} {value!r}: letters, digits, '.', '-' and '_' only")
    return value


def check_segment(kind: str, value: str, longest: int) -> str:
    if not _SEGMENT.match(value) or len(value) > longest:
        raise InvalidRequest(f"invalid {kind} {value!r}: 1 to {longest} characters, no '/' or control characters")
    return value


def split_repo(repo: str) -> tuple[str, str]:
    """`owner/name` → (owner, name), both checked."""
    owner, slash, name = repo.partition("/")
    if not slash:
        raise InvalidRequest(f"invalid repository {repo!r}: expected OWNER/NAME")
    return check_github_name("owner", owner), check_github_name("repository", name)


@dataclass(frozen=True)
class ContextRef:
    """A context's name within an installation: `owner/name` repository, agent, scope."""

    repo: str
    agent: str
    scope: str

    @classmethod
    def of(cls, owner: str, repo: str, agent: str, scope: str) -> ContextRef:
        return cls(
            f"{check_github_name('owner', owner)}/{check_github_name('repository', repo)}",
            check_segment("agent", agent, AGENT_MAX),
            check_segment("scope", scope, SCOPE_MAX),
        )

    @classmethod
    def parse(cls, repo: str, agent: str, scope: str) -> ContextRef:
        owner, name = split_repo(repo)
        return cls.of(owner, name, agent, scope)

    def key(self, installation_id: int) -> ContextKey:
        return ContextKey(installation_id, self.repo, self.agent, self.scope)

    def __str__(self) -> str:
        return f"{self.repo}/{self.agent}/{self.scope}"


def iso(moment: datetime | None) -> str | None:
    """UTC, ISO 8601: SQLite hands back naive datetimes, PostgreSQL ones in the session's zone."""
    if moment is None:
        return None
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat()


def _owner_and_name(repo: str) -> tuple[str, str]:
    owner, _, name = repo.partition("/")
    return owner, name


def version_document(row: ContextVersion, *, with_data: bool = True) -> dict[str, Any]:
    owner, name = _owner_and_name(row.repo)
    document: dict[str, Any] = {
        "owner": owner,
        "repo": name,
        "agent": row.agent,
        "scope": row.scope,
        "version": row.version,
    }
    if with_data:
        document["data"] = row.data
    document.update(
        {
            "summary": row.summary,
            "tags": list(row.tags or []),
            "created_by": row.created_by,
            "job": row.job_id,
            "event": row.delivery_id,
            "created_at": iso(row.created_at),
        }
    )
    return document


def handoff_document(row: Handoff, context_version: int | None) -> dict[str, Any]:
    owner, name = _owner_and_name(row.repo)
    return {
        "id": row.id,
        "owner": owner,
        "repo": name,
        "scope": row.scope,
        "from_agent": row.from_agent,
        "to_agent": row.to_agent,
        "context_version": context_version,
        "package": row.package,
        "job": row.job_id,
        "created_at": iso(row.created_at),
        "claimed_at": iso(row.claimed_at),
        "claimed_by": row.claimed_by,
    }


SUMMARY_MAX, TAGS_MAX, TAG_MAX = 10_000, 32, 64
DEPTH_MAX = 64  # nesting of the data; deeper than any context needs, shallow enough for every JSON library


def check_contents(data: Any, summary: Any, tags: Any) -> None:
    """The limits every written version keeps, whether it came over HTTP or in-process."""
    if not isinstance(data, dict):
        raise InvalidRequest("data must be a JSON object")
    if not isinstance(summary, str) or len(summary) > SUMMARY_MAX:
        raise InvalidRequest(f"summary must be a string of at most {SUMMARY_MAX} characters")
    check_text("summary", summary, prose=True)
    if (
        not isinstance(tags, (list, tuple))
        or len(tags) > TAGS_MAX
        or not all(isinstance(tag, str) and 1 <= len(tag) <= TAG_MAX for tag in tags)
    ):
        raise InvalidRequest(f"tags must be at most {TAGS_MAX} strings of 1 to {TAG_MAX} characters")
    for tag in tags:
        check_text("a tag", tag)
    check_json("data", data)


def check_json(kind: str, value: Any, *, depth_max: int = DEPTH_MAX) -> None:
    """A JSON value to store (a context's data, a handoff's package): at most `depth_max` levels deep,
    and no U+0000 in a key or string. PostgreSQL keeps the escape in a json column, but fails any
    query that reads a field of that document (a daily report, a search), so one NUL would break
    them for good."""
    if not isinstance(value, (dict, list)):
        if isinstance(value, str) and "\x00" in value:
            raise InvalidRequest(f"{kind} holds the character U+0000, which the store cannot keep")
        return
    Where = tuple[Any, str | int] | None  # (where the parent is, key or index): the path, built only to say it
    pending: list[tuple[Any, int, Where]] = [(value, 1, None)]
    while pending:
        item, depth, where = pending.pop()
        if depth > depth_max:
            raise InvalidRequest(f"{kind} is nested deeper than {depth_max} levels")
        pairs = item.items() if isinstance(item, dict) else enumerate(item)
        for key, child in pairs:
            if isinstance(key, str) and "\x00" in key or isinstance(child, str) and "\x00" in child:
                raise InvalidRequest(
                    f"{_path(kind, (where, key))} holds the character U+0000, which the store cannot keep"
                )
            if isinstance(child, (dict, list)):
                pending.append((child, depth + 1, (where, key)))


def _path(kind: str, where: tuple[Any, str | int] | None) -> str:
    steps: list[str] = []
    while where is not None:
        where, key = where
        steps.append(f"[{key}]" if isinstance(key, int) else f".{key}")
    return kind + "".join(reversed(steps))
