"""Publishing Output intents to GitHub, idempotently.

Every output carries the hidden marker `<!-- waooaw:{agent}:{kind}:{key} -->` and is
remembered in `published_outputs`, so a redelivered event edits what it posted
before instead of posting again.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Protocol, TextIO

from agents.events import Event
from agents.outputs import Output, marker


class Publisher(Protocol):
    async def publish(self, agent: str, outputs: Sequence[Output], event: Event) -> None: ...

    async def close(self) -> None: ...


class DryRunPublisher:
    """Without GitHub credentials: print what would be published, so nothing is silently lost."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    async def publish(self, agent: str, outputs: Sequence[Output], event: Event) -> None:
        stream = self.stream or sys.stdout
        for output in outputs:
            print(f"[dry-run] {agent} → {output.kind} {marker(agent, output.kind, output.key)}", file=stream)
            print(f"  {output!r}", file=stream)
        stream.flush()

    async def close(self) -> None:
        return None
