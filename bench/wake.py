#!/usr/bin/env python
"""Wake latency over Redis: from bus.publish(delivery) to the agent's execute() starting.

Everything real but the agent: a RedisStreamBus on a unique stream, bot.worker.Worker
with a registry holding one tiny benchmark agent (it wakes on `pull_request.opened`
and only notes when execute() is first entered), a DryRunPublisher writing to a
StringIO, and an inbox on PostgreSQL (a fresh schema, migrated, dropped afterwards).
The worker runs in this process, on the same event loop as the publisher.

For each of --count deliveries the bench records an inbox row (bot.inbox.Inbox.record,
a Delivery built from the real payload with a unique delivery id), notes t0, calls
bus.publish(id) and measures when execute() starts. Two phases:

  sequential  one delivery in flight: the next is published once the worker has
              finished the previous one. Pure wake latency.
  burst       every row recorded first, then all ids published back to back: latency
              includes queueing; throughput is deliveries handled per second.

    python bench/wake.py                 # 1000 deliveries per phase
    python bench/wake.py --count 200 --phase sequential

This is a benchmark that prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import math
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import select

from agents.base import WowAgent
from agents.events import Event
from agents.outputs import Output
from agents.registry import Registry
from agents.store.db import Store
from agents.store.tables import InboxRecord
from bench.common import add_service_options, find_payload, fresh_schema
from bot import logging as waooaw_logging
from bot.bus import BusMessage, RedisStreamBus
from bot.inbox import Inbox, InboxStatus
from bot.publish import DryRunPublisher
from bot.settings import Settings
from bot.webhooks import Delivery
from bot.wiring import freeze_startup_heap
from bot.worker import Worker

PAYLOAD = "pull_request/opened.payload.json"
WAIT_LIMIT = 30.0  # seconds one delivery may take before the bench gives up on it
MAX_COUNT = 1_000_000


class Probe:
    """Where the benchmark agent and the worker report, keyed by delivery id."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.start_waiters: dict[str, asyncio.Future[float]] = {}
        self.done_waiters: dict[str, asyncio.Future[None]] = {}

    def expect(self, delivery_id: str) -> tuple[asyncio.Future[float], asyncio.Future[None]]:
        loop = asyncio.get_running_loop()
        started, done = loop.create_future(), loop.create_future()
        self.start_waiters[delivery_id], self.done_waiters[delivery_id] = started, done
        return started, done

    def execute_started(self, delivery_id: str, at: float) -> None:
        if delivery_id in self.started:
            return  # a retry or a redelivery: the first entry is the one that counts
        self.started[delivery_id] = at
        waiter = self.start_waiters.get(delivery_id)
        if waiter is not None and not waiter.done():
            waiter.set_result(at)

    def handled(self, delivery_id: str) -> None:
        waiter = self.done_waiters.get(delivery_id)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


PROBE: Probe | None = None


class WakeBenchAgent(WowAgent):
    name = "wake-bench"
    description = "bench/wake.py: notes when execute() starts, does nothing"
    wakes_on = ("pull_request.opened",)

    def should_wake(self, event: Event) -> bool:
        return event.kind == "pull_request.opened"

    async def execute(self, event: Event) -> list[Output]:
        now = time.perf_counter()  # first thing: this is the instant measured
        if PROBE is not None:
            PROBE.execute_started(event.delivery_id, now)
        return []


class BenchWorker(Worker):
    """The real worker; it only also says when a delivery's handling has returned."""

    async def handle(self, message: BusMessage) -> None:
        try:
            await super().handle(message)
        finally:
            if PROBE is not None:
                PROBE.handled(message.delivery_id)


@dataclass
class Phase:
    name: str
    latencies: list[float] = field(default_factory=list)  # seconds, publish -> execute start
    missed: int = 0
    seconds: float = 0.0

    def quantile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))] * 1000

    def throughput(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


class Bench:
    def __init__(self, inbox: Inbox, bus: RedisStreamBus, payload: dict[str, Any], body: bytes) -> None:
        self.inbox, self.bus, self.payload, self.body = inbox, bus, payload, body
        self.ids: list[str] = []

    async def record(self) -> str:
        delivery_id = f"wake-{uuid.uuid4()}"
        delivery = Delivery(delivery_id=delivery_id, event="pull_request", payload=self.payload, body=self.body)
        if not await asyncio.to_thread(self.inbox.record, delivery, InboxStatus.QUEUED):
            raise RuntimeError(f"delivery {delivery_id} was already recorded")
        self.ids.append(delivery_id)
        return delivery_id

    async def sequential(self, count: int, probe: Probe) -> Phase:
        phase = Phase("sequential")
        began = time.perf_counter()
        for _ in range(count):
            delivery_id = await self.record()
            started, done = probe.expect(delivery_id)
            t0 = time.perf_counter()
            await self.bus.publish(delivery_id)
            try:
                at = await asyncio.wait_for(started, WAIT_LIMIT)
                phase.latencies.append(at - t0)
                await asyncio.wait_for(done, WAIT_LIMIT)  # one in flight: let the worker finish it
            except TimeoutError:
                phase.missed += 1
        phase.seconds = time.perf_counter() - began
        return phase

    async def burst(self, count: int, probe: Probe) -> Phase:
        phase = Phase("burst")
        ids = [await self.record() for _ in range(count)]
        waiters = [probe.expect(delivery_id) for delivery_id in ids]
        sent: list[float] = []
        began = time.perf_counter()
        for delivery_id in ids:
            sent.append(time.perf_counter())
            await self.bus.publish(delivery_id)
        deadline = began + WAIT_LIMIT + count * 0.1  # bounded: generous, but it ends
        for t0, (started, done) in zip(sent, waiters, strict=True):
            try:
                at = await asyncio.wait_for(started, max(deadline - time.perf_counter(), 0.01))
                phase.latencies.append(at - t0)
                await asyncio.wait_for(done, max(deadline - time.perf_counter(), 0.01))
            except TimeoutError:
                phase.missed += 1
        phase.seconds = time.perf_counter() - began
        return phase


def inbox_statuses(store: Store, ids: list[str]) -> Counter[str]:
    wanted = set(ids)
    with store.session() as session:
        rows = session.execute(select(InboxRecord.delivery_id, InboxRecord.status)).all()
    return Counter(status for delivery_id, status in rows if delivery_id in wanted)


async def run(args: argparse.Namespace) -> int:
    global PROBE
    waooaw_logging.configure("WARNING")
    payload_path = find_payload(PAYLOAD)
    body = payload_path.read_bytes()
    payload = json.loads(body)
    stream = f"waooaw:bench:wake:{uuid.uuid4().hex[:10]}"
    with fresh_schema(args.pg_url, "bench_wake") as database_url:
        store = Store(database_url)
        bus: RedisStreamBus | None = None
        phases: list[Phase] = []
        statuses: Counter[str] = Counter()
        try:
            store.upgrade()
            settings = Settings(
                WAOOAW_DATABASE_URL=database_url,
                WAOOAW_REDIS_URL=args.redis_url,
                GITHUB_APP_ID=None,
                GITHUB_APP_BOT_USER_ID=None,
            )
            registry = Registry(store)
            registry.register(WakeBenchAgent)
            bus = RedisStreamBus(
                args.redis_url,
                stream=stream,
                group="waooaw-bench",
                block_ms=args.block_ms,
                concurrency=args.bus_concurrency,
            )
            worker = BenchWorker(
                settings=settings, store=store, registry=registry, bus=bus, publisher=DryRunPublisher(io.StringIO())
            )
            freeze_startup_heap()  # as `waooaw worker` does before it consumes
            PROBE = probe = Probe()
            bench = Bench(Inbox(store), bus, payload, body)
            stop = asyncio.Event()
            consuming = asyncio.create_task(worker.run(stop))
            try:
                # Warm up (connections, pools, the consumer group), not counted.
                if args.warmup:
                    await bench.sequential(args.warmup, probe)
                if args.phase in ("sequential", "both"):
                    phases.append(await bench.sequential(args.count, probe))
                if args.phase in ("burst", "both"):
                    phases.append(await bench.burst(args.count, probe))
            finally:
                stop.set()
                try:
                    await asyncio.wait_for(consuming, args.block_ms / 1000 + 10)
                except TimeoutError:
                    consuming.cancel()
                    await asyncio.gather(consuming, return_exceptions=True)
            statuses = await asyncio.to_thread(inbox_statuses, store, bench.ids)
        finally:
            PROBE = None
            if bus is not None:
                try:
                    await bus._redis.delete(stream, f"{stream}:dead", f"{stream}:errors")
                except Exception as exc:  # noqa: BLE001 - clean-up reports, it does not hide the result
                    print(f"warning: could not delete the Redis stream {stream}: {exc!r}", file=sys.stderr)
                await bus.close()
            store.dispose()

    print()
    print(
        f"wake bench: publish -> execute() start over Redis, {args.count} deliveries per phase, "
        f"bus concurrency {args.bus_concurrency}, payload {PAYLOAD} ({len(body)} bytes)"
    )
    print(f"{'':<26}" + "".join(f"{phase.name:>14}" for phase in phases))
    rows = [
        ("delivered", lambda p: f"{len(p.latencies)}"),
        ("missed", lambda p: f"{p.missed}"),
        ("latency p50 (ms)", lambda p: f"{p.quantile(0.50):.2f}"),
        ("latency p99 (ms)", lambda p: f"{p.quantile(0.99):.2f}"),
        ("latency max (ms)", lambda p: f"{p.quantile(1.0):.2f}"),
        ("throughput (deliveries/s)", lambda p: f"{p.throughput():.0f}"),
    ]
    for label, cell in rows:
        print(f"{label:<26}" + "".join(f"{cell(phase):>14}" for phase in phases))
    print(f"inbox statuses of the {sum(statuses.values())} deliveries: {dict(statuses)}")
    not_done = sum(count for status, count in statuses.items() if status != InboxStatus.DONE.value)
    missed = sum(phase.missed for phase in phases)
    return 1 if missed or not_done else 0


def positive_int(text_value: str) -> int:
    value = int(text_value)
    if not 0 < value <= MAX_COUNT:
        raise argparse.ArgumentTypeError(f"must be > 0 and <= {MAX_COUNT}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/wake.py",
        description="Latency from bus.publish to an agent's execute() starting, over Redis Streams, "
        "with the real Worker and a PostgreSQL inbox.",
    )
    parser.add_argument("--count", type=positive_int, default=1000, help="deliveries per phase (default 1000)")
    parser.add_argument(
        "--phase", choices=("both", "sequential", "burst"), default="both", help="which phases (default both)"
    )
    parser.add_argument("--warmup", type=int, default=20, help="deliveries before measuring, not counted (default 20)")
    parser.add_argument(
        "--bus-concurrency", type=positive_int, default=1, help="RedisStreamBus consumers in the worker (default 1)"
    )
    parser.add_argument(
        "--block-ms",
        type=positive_int,
        default=1000,
        help="XREADGROUP block time; a publish wakes it at once (default 1000)",
    )
    add_service_options(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
