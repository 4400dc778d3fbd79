"""The one event type agents see, whatever delivered it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

MARKER_RE = re.compile(r"<!-- waooaw:(?P<agent>[\w.-]+):(?P<kind>[\w.-]+):(?P<key>[^ ]*) -->")


def trailing_marker(body: object) -> re.Match[str] | None:
    """The marker that ends `body`, where every body we write carries it (bot.publish.with_marker).

    A marker anywhere else in a body was quoted or planted by someone, and says nothing
    about who wrote it or what it is.
    """
    text = body.rstrip() if isinstance(body, str) else ""
    start = text.rfind("<!-- waooaw:")
    found = MARKER_RE.match(text, start) if start >= 0 else None
    return found if found is not None and found.end() == len(text) else None


@dataclass(frozen=True)
class Event:
    """A GitHub webhook delivery, normalised.

    `caused_by_app` is true when our own App (by App id or bot user id, never by a
    login suffix) caused the event; `origin_agent` names the agent whose output it
    was, when the hidden marker says so. The worker uses both to avoid loops.
    """

    delivery_id: str
    name: str
    payload: dict[str, Any] = field(repr=False)
    action: str | None = None
    repo: str | None = None
    installation_id: int | None = None
    sender_login: str | None = None
    sender_id: int | None = None
    caused_by_app: bool = False
    origin_agent: str | None = None
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def kind(self) -> str:
        """`pull_request.opened`, or just `push` for events without an action."""
        return f"{self.name}.{self.action}" if self.action else self.name

    @property
    def owner(self) -> str | None:
        return self.repo.split("/", 1)[0] if self.repo else None

    @property
    def comment_body(self) -> str:
        comment = self.payload.get("comment") or {}
        return comment.get("body") or ""

    @property
    def issue_number(self) -> int | None:
        """The issue or pull request the event is about, if any."""
        for key in ("issue", "pull_request"):
            obj = self.payload.get(key)
            number = obj.get("number") if isinstance(obj, dict) else None
            if isinstance(number, int):
                return number
        number = self.payload.get("number")
        return number if isinstance(number, int) else None

    @property
    def repo_public(self) -> bool:
        """Whether the payload says the repository is public; not saying counts as private."""
        return _object(self.payload, "repository").get("private") is False

    @classmethod
    def from_payload(
        cls,
        delivery_id: str,
        name: str,
        payload: dict[str, Any],
        *,
        app_id: int | None = None,
        bot_user_id: int | None = None,
        received_at: datetime | None = None,
    ) -> Event:
        repository = _object(payload, "repository")
        installation = _object(payload, "installation")
        sender = _object(payload, "sender")
        action = payload.get("action")
        caused = _caused_by_app(payload, app_id=app_id, bot_user_id=bot_user_id)
        return cls(
            delivery_id=delivery_id,
            name=name,
            action=action if isinstance(action, str) else None,
            payload=payload,
            repo=repository.get("full_name"),
            installation_id=installation.get("id"),
            sender_login=sender.get("login"),
            sender_id=sender.get("id"),
            caused_by_app=caused,
            origin_agent=_origin_agent(payload) if caused else None,
            received_at=received_at or datetime.now(UTC),
        )


def _object(payload: dict[str, Any], key: str) -> dict[str, Any]:
    """A payload's object by key; anything else there (a signed payload can hold any JSON) counts as absent."""
    value = payload.get(key)
    return value if isinstance(value, dict) else {}


# Actions in which the event's object was written by whoever wrote it: only then does the
# object's author say who caused the event.
_AUTHORED = frozenset({"created", "opened", "edited", "submitted"})


def _caused_by_app(payload: dict[str, Any], *, app_id: int | None, bot_user_id: int | None) -> bool:
    sender = _object(payload, "sender")
    if bot_user_id is not None and sender.get("id") == bot_user_id:
        return True
    if app_id is None or sender.get("type") == "User" or payload.get("action") not in _AUTHORED:
        # A person closing, editing or labelling what our App wrote acts on their own: GitHub
        # still names our App on the object (performed_via_github_app), but the event is theirs.
        return False
    # The object the event is about says which App wrote it, when an App did.
    for key in ("comment", "issue", "pull_request", "review"):
        via = _object(payload, key).get("performed_via_github_app")
        if isinstance(via, dict) and via.get("id") == app_id:
            return True
    return False


def _origin_agent(payload: dict[str, Any]) -> str | None:
    for key in ("comment", "review", "issue", "pull_request"):
        match = trailing_marker(_object(payload, key).get("body"))
        if match:
            return match.group("agent")
    return None
