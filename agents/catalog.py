"""The agents this platform ships, registered in one line each."""

from agents.concierge import Concierge
from agents.context.db import Store
from agents.registry import Registry


def default_registry(store: Store) -> Registry:
    registry = Registry(store)
    registry.register(Concierge)
    return registry
