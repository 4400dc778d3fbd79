"""What every publisher shares: what an output became, the Publisher port, and the marker's place in a body."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from agents.events import Event, trailing_marker
from agents.outputs import Output

BODY_LIMIT = 65_536  # comments, issues and reviews


@dataclass(frozen=True)
class Published:
    """What one output became: its `published_outputs.github_id` and page, None where there is none."""

    kind: str
    key: str
    github_id: int | None
    url: str | None


@dataclass(frozen=True)
class Origin:
    """What outputs are published for: whose they are (the installation) and what asked for them
    (a delivery, a CoE job, a day's report), and the issue a reaction without a number goes on."""

    delivery_id: str
    installation_id: int | None
    issue_number: int | None = None

    @classmethod
    def of(cls, event: Event) -> Origin:
        return cls(event.delivery_id, event.installation_id, event.issue_number)


class Publisher(Protocol):
    async def publish(self, agent: str, outputs: Sequence[Output], origin: Origin) -> list[Published]: ...

    async def close(self) -> None: ...


class PublishError(Exception):
    """Some outputs of one publish call failed; the others were published."""

    def __init__(self, errors: list[tuple[Output, BaseException]]) -> None:
        self.errors = errors
        summary = "; ".join(f"{o.kind} {o.key}: {e.__class__.__name__}" for o, e in errors)
        super().__init__(f"{len(errors)} output(s) not published: {summary}")


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


def status_of(exc: BaseException) -> int | None:
    from githubkit.exception import RequestFailed

    return exc.response.status_code if isinstance(exc, RequestFailed) else None


def carries(body: str | None, hidden: str) -> bool:
    """Whether `hidden` is the marker that ends `body`."""
    found = trailing_marker(body)
    return found is not None and found.group(0) == hidden
