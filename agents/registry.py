"""The catalogue of agents and their lifecycle: active, paused, retired.

States live in the store so that every worker on every machine sees the same
answer; a paused or retired agent never wakes.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from agents.base import WowAgent
from agents.store.db import Store
from agents.store.tables import AgentState


class Lifecycle(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    RETIRED = "retired"


class UnknownAgent(KeyError):
    pass


class Registry:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._agents: dict[str, type[WowAgent]] = {}

    def register(self, agent: type[WowAgent]) -> type[WowAgent]:
        if agent.name in self._agents:
            raise ValueError(f"an agent named {agent.name!r} is already registered")
        self._agents[agent.name] = agent
        return agent

    def get(self, name: str) -> type[WowAgent]:
        try:
            return self._agents[name]
        except KeyError:
            raise UnknownAgent(f"no agent named {name!r}; known: {', '.join(sorted(self._agents))}") from None

    def names(self) -> list[str]:
        return sorted(self._agents)

    def states(self, session: Session | None = None) -> dict[str, Lifecycle]:
        """Every registered agent with its state (active unless the store says otherwise)."""
        if session is None:
            with self.store.reading() as own:
                return self.states(own)
        stored = {agent: state for agent, state in session.execute(select(AgentState.agent, AgentState.state))}
        return {name: Lifecycle(stored.get(name, Lifecycle.ACTIVE)) for name in self.names()}

    def set_state(self, name: str, state: Lifecycle) -> None:
        self.get(name)
        with self.store.session() as session:
            row = session.get(AgentState, name)
            if row is None:
                session.add(AgentState(agent=name, state=state.value))
            else:
                row.state = state.value

    def active(self, session: Session | None = None) -> list[type[WowAgent]]:
        return [self._agents[name] for name, state in self.states(session).items() if state is Lifecycle.ACTIVE]

    def wake_event_names(self) -> frozenset[str]:
        """The event names (before the dot) that some active agent may wake on."""
        return frozenset(pattern.split(".", 1)[0] for agent in self.active() for pattern in agent.wakes_on)
