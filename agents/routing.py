"""Which agents an event may wake, from an index built once over every agent's `wakes_on`.

At catalogue scale (a thousand agents) asking each agent's `should_wake` for every event
is the cost of the wake path; the index answers from the event's kind alone, and only the
agents it names are asked. It answers exactly what `agents.base.wakes_on_any` would for
each agent: a pattern without a dot is an event name (`push`), one without `*?[` an exact
kind (`issues.opened`), any other a glob over the kind (`issues.*`), filed under its
literal event name when it has one, so that an event only tries the globs of its own name.
"""

from __future__ import annotations

import fnmatch
import re
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agents.base import WowAgent
    from agents.events import Event

_GLOB = re.compile(r"[*?\[]")
CACHED_KINDS = 4096  # distinct (name, kind) answers kept; GitHub sends a few hundred kinds


class WakeIndex:
    """Built from agents in the order `candidates` returns them (the registry's: by name)."""

    def __init__(self, agents: Sequence[type[WowAgent]]) -> None:
        self._agents = tuple(agents)
        self._by_name: dict[str, list[int]] = {}  # `push`: compared with the event's name
        self._by_kind: dict[str, list[int]] = {}  # `issues.opened`: compared with the event's kind
        self._globs_by_name: dict[str, list[tuple[re.Pattern[str], int]]] = {}  # `issues.*` under `issues`
        self._globs: list[tuple[re.Pattern[str], int]] = []  # `*.opened`: tried on every event
        for rank, agent in enumerate(self._agents):
            for pattern in agent.wakes_on:
                head, dot, _ = pattern.partition(".")
                if not dot:
                    self._by_name.setdefault(pattern, []).append(rank)
                elif not _GLOB.search(pattern):
                    self._by_kind.setdefault(pattern, []).append(rank)
                else:
                    compiled = re.compile(fnmatch.translate(pattern))
                    if _GLOB.search(head):
                        self._globs.append((compiled, rank))
                    else:
                        # Only a kind starting with `head.` can match: file it under that name.
                        self._globs_by_name.setdefault(head, []).append((compiled, rank))
        self._answers: dict[tuple[str, str], tuple[type[WowAgent], ...]] = {}
        self._lock = threading.Lock()

    def candidates(self, event: Event) -> tuple[type[WowAgent], ...]:
        """The agents one of whose `wakes_on` patterns matches the event, in index order."""
        key = (event.name, event.kind)
        found = self._answers.get(key)
        if found is None:
            found = self._match(*key)
            with self._lock:
                if len(self._answers) >= CACHED_KINDS:
                    self._answers.clear()
                self._answers[key] = found
        return found

    def _match(self, name: str, kind: str) -> tuple[type[WowAgent], ...]:
        ranks = set(self._by_name.get(name, ()))
        ranks.update(self._by_kind.get(kind, ()))
        head = kind.partition(".")[0]
        globs = [*self._globs_by_name.get(head, ()), *self._globs]
        ranks.update(rank for compiled, rank in globs if rank not in ranks and compiled.match(kind))
        return tuple(self._agents[rank] for rank in sorted(ranks))


def event_names(agents: Iterable[type[WowAgent]]) -> frozenset[str]:
    """The event names (before the dot) of every pattern of `agents`: what intake may queue."""
    return frozenset(pattern.split(".", 1)[0] for agent in agents for pattern in agent.wakes_on)
