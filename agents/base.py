"""WowAgent: the one idea an agent author has to hold.

`should_wake(event)` says whether the agent cares; `execute(event)` returns Output
intents. Around them the runtime calls `wake_up` (load context) and `save_context`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from agents.context import repository
from agents.context.db import Store
from agents.context.repository import ContextKey
from agents.events import Event
from agents.outputs import Output

if TYPE_CHECKING:
    from agents.registry import Registry


@dataclass(frozen=True)
class CommandHelp:
    usage: str
    summary: str
    needs_write: bool = False


@dataclass(frozen=True)
class HandoffPackage:
    deliverable: Any
    open_questions: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)


async def _no_queue() -> int | None:
    return None


@dataclass
class AgentEnv:
    """What the platform lends an agent: the store, the catalogue, and a look at the queue."""

    store: Store
    registry: "Registry"
    queue_depth: Callable[[], Awaitable[int | None]] = _no_queue


class WowAgent:
    name: ClassVar[str]
    description: ClassVar[str] = ""
    # Event kinds the agent may wake on: "pull_request.opened", "push", "issue_comment.*".
    # The webhook uses the union of these to answer "queued" or "ignored".
    wakes_on: ClassVar[tuple[str, ...]] = ()
    commands: ClassVar[tuple[CommandHelp, ...]] = ()

    def __init__(self, env: AgentEnv) -> None:
        self.env = env
        self.context: dict[str, Any] = {}
        self._context_key: ContextKey | None = None
        self._loaded: dict[str, Any] = {}

    def should_wake(self, event: Event) -> bool:
        return matches_any(event, self.wakes_on)

    def context_scope(self, event: Event) -> str:
        """Which context this event belongs to; one per repository unless an agent says otherwise."""
        return "repo"

    async def wake_up(self, event: Event) -> None:
        """Load the latest context for this event's scope (empty when there is none)."""
        self.context, self._loaded, self._context_key = {}, {}, None
        if event.installation_id is None or event.repo is None:
            return
        self._context_key = ContextKey(event.installation_id, event.repo, self.name, self.context_scope(event))
        with self.env.store.reading() as session:
            row = repository.latest(session, self._context_key)
            if row is not None:
                self.context = dict(row.data)
                self._loaded = dict(row.data)

    async def execute(self, event: Event) -> list[Output]:
        raise NotImplementedError

    async def save_context(self, event: Event) -> None:
        """Write a new context version when the agent changed its context."""
        if self._context_key is None or self.context == self._loaded:
            return
        with self.env.store.session() as session:
            repository.save(
                session, self._context_key, self.context, created_by=self.name, delivery_id=event.delivery_id
            )
        self._loaded = dict(self.context)

    async def handoff_to(self, agent: str, package: HandoffPackage, event: Event) -> int:
        """Address a package to another agent; returns the handoff id."""
        if event.installation_id is None or event.repo is None:
            raise ValueError("a handoff needs an installation and a repository")
        scope = self.context_scope(event)
        with self.env.store.session() as session:
            version = repository.save(
                session,
                ContextKey(event.installation_id, event.repo, self.name, scope),
                self.context,
                created_by=self.name,
                delivery_id=event.delivery_id,
            )
            handoff = repository.create_handoff(
                session,
                installation_id=event.installation_id,
                repo=event.repo,
                scope=scope,
                from_agent=self.name,
                to_agent=agent,
                package={
                    "deliverable": package.deliverable,
                    "open_questions": list(package.open_questions),
                    "provenance": dict(package.provenance),
                },
                context_version_id=version.id,
            )
            return handoff.id


def matches(event: Event, pattern: str) -> bool:
    """`push` matches push events; `pull_request.opened` one action; `issues.*` every action."""
    if "." not in pattern:
        return event.name == pattern
    return fnmatch.fnmatchcase(event.kind, pattern)


def matches_any(event: Event, patterns: tuple[str, ...]) -> bool:
    return any(matches(event, pattern) for pattern in patterns)
