"""The agents this platform ships, registered in one line each, and the agents made from specs."""

from collections.abc import Sequence
from pathlib import Path

from agents.concierge import Concierge
from agents.curator import LearningCurator
from agents.domain.agent import WowDomain
from agents.factory.agent import build_agent
from agents.factory.catalogue import CatalogueError, load_catalogue
from agents.factory.spec import SpecError
from agents.hiring import Hiring
from agents.registry import Registry
from agents.reputation.agent import OutcomeClerk
from agents.store.db import Store
from agents.vision.agent import WowVisionPrime
from agents.vision.yamlsource import Problem


def default_registry(store: Store, spec_dirs: Sequence[Path] = ()) -> Registry:
    """The built-in agents, and one agent per spec of agents/specs/ and of `spec_dirs`
    (WAOOAW_AGENT_SPECS): all of them, or CatalogueError with every problem."""
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
    return registry
