"""A worker with two messaging agents, run as a process of its own that a test SIGKILLs mid-run.

    python -m tests.integration.message_worker DATABASE_URL REDIS_URL STREAM HANG FLAG

HANG says where it stops for good once FLAG is written: `receiver` (in the addressee's
execute) or `sender` (after the sender's messages are committed, before its run is recorded
as done). The test kills it there, and a rescuer built by `worker` finishes the work.
"""

from __future__ import annotations

import asyncio
import io
import sys
import time
from pathlib import Path

from agents.base import WowAgent
from agents.messages import Received
from agents.outputs import Comment, Message, Output
from agents.registry import Registry
from agents.store.db import Store
from bot.bus import RedisStreamBus
from bot.publish import DryRunPublisher
from bot.settings import Settings
from bot.worker import FinishedRun, Outcome, Worker

TIMINGS = {"block_ms": 100, "backoff_base": 0.01, "visibility_timeout": 1.0}
HANG: dict[str, str] = {}  # where this process stops, and the file it writes there


def _hang_here(point: str) -> bool:
    if HANG.get("point") != point:
        return False
    Path(HANG["flag"]).write_text(point)
    return True


class Sender(WowAgent):
    name = "sender"
    wakes_on = ("issue_comment.created",)

    async def execute(self, event) -> list[Output]:
        self.context["runs"] = self.context.get("runs", 0) + 1
        return [Message("handoff", "receiver", {"deliverable": "the draft"})]


class Receiver(WowAgent):
    name = "receiver"
    wakes_on = ("agent_message.handoff",)

    async def execute(self, event) -> list[Output]:
        if _hang_here("receiver"):
            await asyncio.Event().wait()
        received = Received.of(event)
        assert received is not None
        self.context["got"] = self.context.get("got", 0) + 1
        return [Comment(repo=event.repo or "", issue_number=1, body=f"got {received.body}", key="got")]


class HangingWorker(Worker):
    def _finish_run(self, run: FinishedRun, delivery_id: str, attempt: int, outcome: Outcome | None) -> None:
        if run.result.agent == "sender" and _hang_here("sender"):
            time.sleep(3600)  # a thread of a process about to be killed
        super()._finish_run(run, delivery_id, attempt, outcome)


def worker(database_url: str, redis_url: str, stream: str, consumer: str, output: io.StringIO | None = None) -> Worker:
    store = Store(database_url)
    registry = Registry(store)
    registry.register(Sender)
    registry.register(Receiver)
    settings = Settings(WAOOAW_DATABASE_URL=database_url, WAOOAW_REDIS_URL=redis_url, WAOOAW_AGENT_TIMEOUT=30)
    bus = RedisStreamBus(redis_url, stream=stream, consumer=consumer, **TIMINGS)  # type: ignore[arg-type]
    kind = HangingWorker if HANG else Worker
    return kind(
        settings=settings,
        store=store,
        registry=registry,
        bus=bus,
        publisher=DryRunPublisher(output or io.StringIO()),
        name=consumer,
    )


async def main(database_url: str, redis_url: str, stream: str, hang: str, flag: str) -> None:
    HANG.update(point=hang, flag=flag)
    await worker(database_url, redis_url, stream, "doomed").run(asyncio.Event())


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
