"""The agents this platform ships, registered in one line each."""

from agents.concierge import Concierge
from agents.curator import LearningCurator
from agents.domain.agent import WowDomain
from agents.hiring import Hiring
from agents.registry import Registry
from agents.reputation.agent import OutcomeClerk
from agents.store.db import Store
from agents.vision.agent import WowVisionPrime


def default_registry(store: Store) -> Registry:
    registry = Registry(store)
    registry.register(Concierge)
    registry.register(WowVisionPrime)
    registry.register(WowDomain)
    registry.register(OutcomeClerk)
    registry.register(Hiring)
    registry.register(LearningCurator)
    return registry
