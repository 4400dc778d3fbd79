"""The catalogue of agents, the index that routes events to them, and their lifecycle.

States live in the store so that every worker on every machine sees the same answer:
an agent's state everywhere (`agent_states`), and its hired identity on each repository
(`agent_hires`, agents/hires.py); a paused or retired agent never wakes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from agents import hires
from agents.base import WowAgent
from agents.events import Event
from agents.hires import Lifecycle, Standing
from agents.routing import WakeIndex, event_names
from agents.store.db import Store
from agents.store.tables import AgentState

__all__ = ["Lifecycle", "Registry", "Standing", "UnknownAgent"]


class UnknownAgent(KeyError):
    pass


class Registry:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._agents: dict[str, type[WowAgent]] = {}
        self._index: WakeIndex | None = None
        self._index_lock = threading.Lock()

    def register(self, agent: type[WowAgent]) -> type[WowAgent]:
        if agent.name in self._agents:
            raise ValueError(f"an agent named {agent.name!r} is already registered")
        self._agents[agent.name] = agent
        self._index = None  # built again, once, at the next event
        return agent

    def get(self, name: str) -> type[WowAgent]:
        try:
            return self._agents[name]
        except KeyError:
            raise UnknownAgent(f"no agent named {name!r}; known: {', '.join(sorted(self._agents))}") from None

    def names(self) -> list[str]:
        return sorted(self._agents)

    def agents(self) -> list[type[WowAgent]]:
        """Every agent, by name."""
        return [self._agents[name] for name in self.names()]

    def index(self) -> WakeIndex:
        index = self._index
        if index is None:
            with self._index_lock:
                if self._index is None:
                    self._index = WakeIndex(self.agents())
                index = self._index
        return index

    def candidates(self, event: Event) -> tuple[type[WowAgent], ...]:
        """The agents whose `wakes_on` matches the event (by name), whatever their state: from the index."""
        return self.index().candidates(event)

    def states(self, session: Session | None = None) -> dict[str, Lifecycle]:
        """Every registered agent with its state everywhere (active unless the store says otherwise)."""
        if session is None:
            with self.store.reading() as own:
                return self.states(own)
        stored = {agent: state for agent, state in session.execute(select(AgentState.agent, AgentState.state))}
        return {name: Lifecycle(stored.get(name, Lifecycle.ACTIVE)) for name in self.names()}

    def standings(
        self,
        session: Session,
        installation_id: int | None,
        repo: str | None,
        agents: Iterable[type[WowAgent]] | None = None,
    ) -> dict[str, Standing]:
        """The hired identity of `agents` (None: all) on one repository, in one round trip."""
        return hires.standings(session, installation_id, repo, list(agents) if agents is not None else self.agents())

    def set_state(self, name: str, state: Lifecycle, *, repos: Iterable[tuple[int | None, str]] = ()) -> None:
        """The agent's state everywhere, or only on `repos` ((installation, repository) pairs) when given."""
        self.get(name)
        repos = list(repos)
        with self.store.session() as session:
            for installation_id, repo in repos:
                hires.set_state(session, installation_id, repo, name, state)
            if repos:
                return
            row = session.get(AgentState, name)
            if row is None:
                session.add(AgentState(agent=name, state=state.value))
            else:
                row.state = state.value

    def active(self, session: Session | None = None) -> list[type[WowAgent]]:
        """The agents active everywhere."""
        return [self._agents[name] for name, state in self.states(session).items() if state is Lifecycle.ACTIVE]

    def wake_event_names(self) -> frozenset[str]:
        """The event names (before the dot) that an agent active everywhere or on some repository may wake on."""
        with self.store.session() as session:
            states = self.states(session)
            somewhere = hires.active_somewhere(session)
        awake = [
            agent
            for name, agent in self._agents.items()
            if states[name] is Lifecycle.ACTIVE or (states[name] is Lifecycle.PAUSED and name in somewhere)
        ]
        return event_names(awake)
