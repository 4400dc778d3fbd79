"""WowAgent: the one idea an agent author has to hold.

`should_wake(event)` says whether the agent cares; `execute(event)` returns Output
intents. Around them the runtime calls `wake_up` (load context) and `save_context`.
"""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy.orm import Session

from agents.context import repository
from agents.context.models import ContextVersion
from agents.context.repository import ContextKey
from agents.context.writes import Append, SessionWriter
from agents.events import Event
from agents.messages import EVENT as MESSAGE_EVENT
from agents.messages import addressed_to
from agents.outputs import Output
from agents.ports import RepoReader
from agents.store.db import Store

if TYPE_CHECKING:
    from agents.budgets import BudgetPolicy
    from agents.decisions import DecisionCache, DecisionLadder
    from agents.factory.spec import AgentSpec
    from agents.llm import LLMClient
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


def _no_limits() -> BudgetPolicy:
    from agents.budgets import BudgetPolicy  # the ledger and the LLM client, only for an env that is made

    return BudgetPolicy()


@dataclass
class AgentEnv:
    """What the platform lends an agent: the store, the catalogue, and a look at the queue."""

    store: Store
    registry: Registry
    queue_depth: Callable[[], Awaitable[int | None]] = _no_queue
    # Reads GitHub for the event's installation; returns None when there are no credentials.
    reader_for: Callable[[Event], RepoReader | None] = lambda event: None
    # The decision ladder's parts that live as long as the process: Claude (None without
    # an API key: LLM items are then skipped) and the decision cache (the DB's without Redis).
    llm: LLMClient | None = None
    decision_cache: DecisionCache | None = None
    # The operator's LLM limits (WAOOAW_LLM_*_BUDGET_USD); a repository's config may only lower them.
    budgets: BudgetPolicy = field(default_factory=_no_limits)


class WowAgent:
    name: ClassVar[str]
    description: ClassVar[str] = ""
    spec: ClassVar[AgentSpec | None] = None  # the spec an agent built by agents.factory was made from
    # Event kinds the agent may wake on: "pull_request.opened", "push", "issue_comment.*".
    # The webhook uses the union of these to answer "queued" or "ignored".
    wakes_on: ClassVar[tuple[str, ...]] = ()
    commands: ClassVar[tuple[CommandHelp, ...]] = ()
    # Roles it answers to as `COE:ROLE` ("support:triage"): a message addressed to one wakes it,
    # as one addressed to its name does (agents/messages.py).
    roles: ClassVar[tuple[str, ...]] = ()
    # The Centre of Excellence the agent belongs to (a spec agent's `coe`), None for a platform agent.
    coe: ClassVar[str | None] = None
    # Off on a repository until its `.github/waooaw.yml` lists it under `agents.enable` (every spec
    # agent); an agent that is not is on wherever it is not listed under `agents.disable`.
    hire_required: ClassVar[bool] = False

    def __init__(self, env: AgentEnv) -> None:
        self.env = env
        self.context: dict[str, Any] = {}
        self._context_key: ContextKey | None = None
        self._loaded: dict[str, Any] = {}

    def should_wake(self, event: Event) -> bool:
        if event.name == MESSAGE_EVENT and not addressed_to(event, self.name, self.roles):
            return False  # another agent's message, whatever wakes_on says
        return wakes_on_any(event, self.wakes_on)

    @property
    def context_key(self) -> ContextKey | None:
        """The context `wake_up` loaded (None for an event without an installation or a repository)."""
        return self._context_key

    def context_scope(self, event: Event) -> str:
        """Which context this event belongs to; one per repository unless an agent says otherwise."""
        return "repo"

    async def wake_up(self, event: Event) -> None:
        """Load the latest context for this event's scope (empty when there is none)."""
        self.context, self._loaded, self._loaded_version, self._context_key = {}, {}, 0, None
        if event.installation_id is None or event.repo is None:
            return
        self._context_key = ContextKey(event.installation_id, event.repo, self.name, self.context_scope(event))
        row = await asyncio.to_thread(self._read_latest, self._context_key)
        if row is not None:
            self.context = dict(row.data)
            self._loaded = dict(row.data)
            self._loaded_version = row.version

    def _read_latest(self, key: ContextKey) -> ContextVersion | None:
        with self.env.store.reading() as session:
            return repository.latest(session, key)

    def ladder(self, event: Event, budgets: BudgetPolicy) -> DecisionLadder:
        """The decision ladder for this event's decisions, its ledger rows owned by the event, inside
        `budgets` (the platform's, lowered by what the agent's config or spec says)."""
        from agents.decisions import DecisionLadder  # the LLM client and the ledger, only for an agent that decides
        from agents.ledger import LedgerOwner

        owner = LedgerOwner(
            repo=event.repo,
            delivery_id=event.delivery_id,
            installation_id=event.installation_id,
            public=event.repo_public,
        )
        return DecisionLadder(self.env.store, self.env.decision_cache, self.env.llm, owner, budgets=budgets)

    async def read_context(self, event: Event, scope: str) -> dict[str, Any]:
        """Another scope's latest context of this agent, read-only (e.g. repo-wide settings)."""
        if event.installation_id is None or event.repo is None:
            return {}
        row = await asyncio.to_thread(
            self._read_latest, ContextKey(event.installation_id, event.repo, self.name, scope)
        )
        return dict(row.data) if row is not None else {}

    async def execute(self, event: Event) -> list[Output]:
        raise NotImplementedError

    async def save_context(self, event: Event) -> None:
        """Write a new context version when the agent changed its context.

        Raises StaleContext when another run saved since `wake_up` read it: the run
        fails and is retried on the newer context, so no update is ever lost.
        """
        if self._context_key is None or self.context == self._loaded:
            return
        await asyncio.to_thread(self._write, event.delivery_id, None)

    async def handoff_to(self, agent: str, package: HandoffPackage, event: Event) -> int:
        """Save the context and address a package to another agent, together; returns the handoff id."""
        if self._context_key is None:
            raise ValueError("a handoff needs an installation and a repository")
        _, handoff_id = await asyncio.to_thread(self._write, event.delivery_id, (agent, package))
        assert handoff_id is not None
        return handoff_id

    def _write(self, delivery_id: str, handoff: tuple[str, HandoffPackage] | None) -> tuple[int, int | None]:
        key, data = self._context_key, dict(self.context)
        assert key is not None
        handoff_ids: list[int] = []

        def hand_off(session: Session, row: ContextVersion) -> None:  # in the same transaction as the version
            assert handoff is not None
            to_agent, package = handoff
            created = repository.create_handoff(
                session,
                installation_id=key.installation_id,
                repo=key.repo,
                scope=key.scope,
                from_agent=self.name,
                to_agent=to_agent,
                package={
                    "deliverable": package.deliverable,
                    "open_questions": list(package.open_questions),
                    "provenance": dict(package.provenance),
                },
                context_version_id=row.id,
            )
            handoff_ids.append(created.id)

        append = Append(key, data, self._loaded_version, self.name, delivery_id=delivery_id)
        row = SessionWriter(self.env.store).write(append, then=hand_off if handoff is not None else None)
        self._loaded, self._loaded_version = data, row.version
        return row.version, handoff_ids[0] if handoff_ids else None


def matches(event: Event, pattern: str) -> bool:
    """`push` matches push events; `pull_request.opened` one action; `issues.*` every action."""
    if "." not in pattern:
        return event.name == pattern
    return fnmatch.fnmatchcase(event.kind, pattern)


def wakes_on_any(event: Event, patterns: tuple[str, ...]) -> bool:
    return any(matches(event, pattern) for pattern in patterns)
