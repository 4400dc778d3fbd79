"""Agent messages: one agent addressing another, or a role of a CoE, through the edge.

An agent sends one by returning `agents.outputs.Message`. The edge (bot/messages.py) records it
in `agent_messages` and delivers it like a webhook delivery: an inbox row of the event named
`agent_message`, whose action is the message's kind and whose payload carries the message
under `message`, with `installation` and `repository` shaped as in GitHub's payloads, so that
`Event.from_payload` gives the message's installation and repository. The addressee wakes on
it through `should_wake`/`execute` (`wakes_on = ("agent_message.handoff",)`), exactly once in
effect like on any event, and reads it with `Received.of(event)`.

This module is the protocol: the kinds, who a message may be addressed to, how its key,
conversation (correlation id) and hop count follow from the event that caused it, and the
payload. docs/messages.md explains it with an example.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from agents.events import Event

EVENT = "agent_message"
MessageKind = Literal["request", "handoff", "inform", "result", "escalate"]
KINDS: tuple[str, ...] = get_args(MessageKind)
AGENT_NAME = re.compile(r"[a-z][a-z0-9-]{1,39}")  # as an agent spec's name
ROLE = re.compile(r"(?P<coe>[a-z][a-z0-9-]{1,39}):(?P<role>[a-z][a-z0-9-]{0,39})")  # COE:ROLE
KEY = re.compile(r"[\w.:/-]{1,128}")
CORRELATION = re.compile(r"[\w.:-]{1,64}")
BODY_LIMIT = 65_536  # bytes of the body as JSON
# Messages caused by messages, one after the other, before the edge refuses the next: two agents
# answering each other for ever would otherwise keep the workers busy for ever.
MAX_HOPS = 32
# Conversations started by a delivery get a correlation id derived from it, so a rerun agrees.
_CONVERSATIONS = uuid.UUID("6f1c2b1e-93d4-4c55-8f1a-5b1d0c3e9a77")


class InvalidMessage(ValueError):
    """A Message an agent built does not follow the protocol."""


def check_message(
    kind: str, to: str, body: object, correlation_id: str | None, deadline: datetime | None, key: str
) -> None:
    if kind not in KINDS:
        raise InvalidMessage(f"message kind {kind!r}: one of {', '.join(KINDS)}")
    if not (AGENT_NAME.fullmatch(to) or ROLE.fullmatch(to)):
        raise InvalidMessage(f"message to {to!r}: an agent name, or a role as COE:ROLE (lower case)")
    if not isinstance(body, str | dict):
        raise InvalidMessage("a message's body is a text or a JSON object")
    try:
        size = len(json.dumps(body).encode())
    except (TypeError, ValueError) as exc:
        raise InvalidMessage(f"a message's body must be JSON: {exc}") from None
    if size > BODY_LIMIT:
        raise InvalidMessage(f"a message's body is {size} bytes as JSON; at most {BODY_LIMIT}")
    if correlation_id is not None and not CORRELATION.fullmatch(correlation_id):
        raise InvalidMessage(f"correlation id {correlation_id!r}: 1-64 letters, digits, '.', ':', '_' or '-'")
    if deadline is not None and deadline.tzinfo is None:
        raise InvalidMessage("a message's deadline needs a time zone")
    if key and not KEY.fullmatch(key):
        raise InvalidMessage(f"message key {key!r}: 1-128 letters, digits, '.', ':', '/', '_' or '-'")


def is_role(to: str) -> bool:
    return ROLE.fullmatch(to) is not None


@dataclass(frozen=True)
class Received:
    """The message an `agent_message` event carries."""

    id: int
    kind: str
    sender: str
    to: str
    body: Any
    correlation_id: str
    causation: str  # the delivery whose run sent it (a webhook's, or another message's)
    hops: int
    deadline: datetime | None = None
    handoff_id: int | None = None  # a handoff's record (/api/v1/handoffs)

    @classmethod
    def of(cls, event: Event) -> Received | None:
        """The message, or None for any other event (or a payload that is not one of ours)."""
        message = event.payload.get("message")
        if event.name != EVENT or not isinstance(message, dict):
            return None
        try:
            deadline = message.get("deadline")
            return cls(
                id=int(message["id"]),
                kind=str(message["kind"]),
                sender=str(message["from"]),
                to=str(message["to"]),
                body=message.get("body"),
                correlation_id=str(message["correlation_id"]),
                causation=str(message["causation"]),
                hops=int(message.get("hops", 1)),
                deadline=datetime.fromisoformat(deadline) if isinstance(deadline, str) else None,
                handoff_id=int(message["handoff_id"]) if message.get("handoff_id") is not None else None,
            )
        except (KeyError, TypeError, ValueError):
            return None


def addressed_to(event: Event, name: str, roles: tuple[str, ...] = ()) -> bool:
    """Whether an `agent_message` event is addressed to this agent, by its name or one of its roles."""
    received = Received.of(event)
    return received is not None and (received.to == name or received.to in roles)


def correlation_for(event: Event) -> str:
    """A new message's conversation when its sender names none: that of the message it answers,
    else one of the event's own (the same for every message its runs send, on every rerun)."""
    received = Received.of(event)
    if received is not None:
        return received.correlation_id
    return str(uuid.uuid5(_CONVERSATIONS, f"{event.installation_id}:{event.delivery_id}"))


def hops_for(event: Event) -> int:
    """How many messages, one causing the next, a message sent on this event ends."""
    received = Received.of(event)
    return received.hops + 1 if received is not None else 1


def message_key(installation_id: int, delivery_id: str, sender: str, key: str) -> str:
    """A message's key in its installation: the sending delivery, the sender and the message's key in the run."""
    digest = hashlib.sha256(f"{installation_id}\0{delivery_id}\0{sender}\0{key}".encode()).hexdigest()
    return digest[:48]


def delivery_id_for(message_key: str) -> str:
    """The inbox's id for a message's delivery."""
    return f"msg-{message_key}"


def payload(
    *,
    message: dict[str, Any],
    installation_id: int,
    repo: str,
    private: bool,
    issue_number: int | None,
) -> dict[str, Any]:
    """An `agent_message` delivery's payload: the message, and where it belongs as GitHub says it."""
    owner, _, name = repo.partition("/")
    shaped: dict[str, Any] = {
        "action": message["kind"],
        "message": message,
        "installation": {"id": installation_id},
        "repository": {"full_name": repo, "name": name, "owner": {"login": owner}, "private": private},
    }
    if issue_number is not None:
        shaped["number"] = issue_number  # the issue or pull request the conversation is about
    return shaped


def handoff_package(body: object, provenance: dict[str, Any]) -> dict[str, Any]:
    """A handoff message's record (/api/v1/handoffs): a body shaped as a package (`deliverable`,
    `open_questions`, `provenance`) is one; any other body is the deliverable. Its provenance
    also names the message and its conversation."""
    if isinstance(body, dict) and "deliverable" in body:
        questions = body.get("open_questions")
        given = body.get("provenance")
        return {
            "deliverable": body["deliverable"],
            "open_questions": [str(q) for q in questions] if isinstance(questions, list) else [],
            "provenance": {**(given if isinstance(given, dict) else {}), **provenance},
        }
    return {"deliverable": body, "open_questions": [], "provenance": provenance}
