"""The agents this platform ships, registered in one line each, and the agents made from specs."""

from collections.abc import Sequence
from pathlib import Path

from agents.concierge import Concierge
from agents.coordination.coordinator import coordinator_for
from agents.coordination.raci import load_matrices
from agents.curator import LearningCurator
from agents.domain.agent import WowDomain
from agents.factory.agent import build_agent
from agents.factory.catalogue import BUILTIN_SPECS, CatalogueError, load_catalogue
from agents.factory.spec import SpecError
from agents.hiring import Hiring
from agents.registry import Registry
from agents.reputation.agent import OutcomeClerk
from agents.store.db import Store
from agents.vision.agent import WowVisionPrime
from agents.vision.yamlsource import Problem


def default_registry(store: Store, spec_dirs: Sequence[Path] = ()) -> Registry:
    """The built-in agents, one agent per spec of agents/specs/ and of `spec_dirs` (WAOOAW_AGENT_SPECS),
    and a coordinator per CoE with a RACI matrix there: all of them, or CatalogueError with every problem."""
    registry = Registry(store)
    registry.register(Concierge)
    registry.register(WowVisionPrime)
    registry.register(WowDomain)
    registry.register(OutcomeClerk)
    registry.register(Hiring)
    registry.register(LearningCurator)
    specs = load_catalogue(spec_dirs)
    taken = [spec for spec in specs if spec.name in registry.names()]
    if taken:
        name = "is a built-in agent's name"
        raise CatalogueError([SpecError(str(s.source), [Problem(None, "name", f"{s.name!r} {name}")]) for s in taken])
    for spec in specs:
        registry.register(build_agent(spec))
    # One coordinator per CoE with a RACI matrix (`<dir>/<coe>/raci.yaml`), naming that CoE's agents.
    by_coe: dict[str, list[str]] = {}
    for agent in registry.agents():
        if agent.coe is not None:
            by_coe.setdefault(agent.coe, []).append(agent.name)
    for raci in load_matrices([BUILTIN_SPECS, *spec_dirs], by_coe):
        registry.register(coordinator_for(raci))
    return registry
