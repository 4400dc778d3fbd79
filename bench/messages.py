#!/usr/bin/env python
"""Handoff latency over Redis: from an agent sending a handoff to its addressee's execute() starting.

Everything real but the two agents: two worker processes (bot.worker.Worker, each a process of
its own) consume one RedisStreamBus stream, on an inbox and `agent_messages` in PostgreSQL (a
fresh schema, migrated, dropped afterwards). The sender wakes on the real
`issue_comment.created` payload and returns one `Message("handoff", "bench-receiver", …)`
stamped with the instant it returns it; the edge records the message, its handoff record and
its delivery, and puts the delivery on the bus; the receiver notes the instant its execute()
starts. Both instants are CLOCK_MONOTONIC, which every process of the machine shares.

The comment deliveries are recorded first, then published at a fixed offered rate (open loop),
so the handoffs are sent at that rate whatever the workers do.

    python bench/messages.py                       # 600 handoffs at 20/s
    python bench/messages.py --rate 50 --count 1000
    python bench/messages.py --routing             # a coordinator's routing decisions per second

`--routing` times a CoE coordinator (agents/coordination/) with 100 agents in its CoE, all hired on
the repository, with outcomes (reputation) and open tasks (load) of their own: each decision reads
their standings, scores and loads, picks one and takes the task's lock (a `task_assignments` row),
one task after the other, on PostgreSQL.

This is a benchmark that prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import redis.asyncio as aioredis
from sqlalchemy import func, select

from agents.base import WowAgent
from agents.events import Event
from agents.messages import Received
from agents.outputs import Message, Output
from agents.registry import Registry
from agents.store.db import Store
from agents.store.tables import AgentMessage, InboxRecord
from bench.common import add_service_options, find_payload, fresh_schema, percentile, send_time
from bot import logging as waooaw_logging
from bot.bus import RedisStreamBus
from bot.inbox import Inbox, InboxStatus
from bot.publish import DryRunPublisher
from bot.settings import Settings
from bot.webhooks import Delivery
from bot.wiring import freeze_startup_heap
from bot.worker import Worker

PAYLOAD = "issue_comment/created.with-installation.payload.json"
WORKERS = 2
WAIT_LIMIT = 60.0  # seconds after the last send before the bench gives up on what is missing
RESULTS: dict[str, Any] = {}  # a worker process: its Redis client and the list it reports to


class BenchSender(WowAgent):
    name = "bench-sender"
    description = "bench/messages.py: hands off at once"
    wakes_on = ("issue_comment.created",)

    async def execute(self, event: Event) -> list[Output]:
        return [Message("handoff", "bench-receiver", {"deliverable": event.delivery_id, "sent": time.monotonic()})]


class BenchReceiver(WowAgent):
    name = "bench-receiver"
    description = "bench/messages.py: notes when execute() starts"
    wakes_on = ("agent_message.handoff",)

    async def execute(self, event: Event) -> list[Output]:
        now = time.monotonic()  # first thing: this is the instant measured
        received = Received.of(event)
        if received is not None and isinstance(received.body, dict):
            body = received.body
            await RESULTS["redis"].rpush(RESULTS["key"], json.dumps([body["deliverable"], now - body["sent"]]))
        return []


async def serve_worker(args: argparse.Namespace) -> None:
    """One worker process: the real Worker with the two bench agents, until it is terminated."""
    waooaw_logging.configure("WARNING")
    settings = Settings(
        WAOOAW_DATABASE_URL=args.database_url,
        WAOOAW_REDIS_URL=args.redis_url,
        WAOOAW_BUS_VISIBILITY_TIMEOUT=3600,  # no sweep re-queues a delivery the driver has not sent yet
        GITHUB_APP_ID=None,
        GITHUB_APP_BOT_USER_ID=None,
    )
    store = Store(args.database_url)
    registry = Registry(store)
    registry.register(BenchSender)
    registry.register(BenchReceiver)
    bus = RedisStreamBus(
        args.redis_url, stream=args.stream, group="waooaw-bench", consumer=args.name, block_ms=1000, concurrency=4
    )
    RESULTS.update(redis=aioredis.Redis.from_url(args.redis_url), key=f"{args.stream}:latencies")
    worker = Worker(
        settings=settings, store=store, registry=registry, bus=bus, publisher=DryRunPublisher(io.StringIO())
    )
    freeze_startup_heap()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await worker.run(stop)


async def drive(args: argparse.Namespace) -> int:
    waooaw_logging.configure("WARNING")
    body = find_payload(PAYLOAD).read_bytes()
    payload = json.loads(body)
    tag = uuid.uuid4().hex[:10]
    stream = f"waooaw:bench:messages:{tag}"
    with fresh_schema(args.pg_url, "bench_messages") as database_url:
        store = Store(database_url)
        client = aioredis.Redis.from_url(args.redis_url)
        workers: list[subprocess.Popen[bytes]] = []
        latencies: dict[str, float] = {}
        try:
            store.upgrade()
            ids = [f"bench-{uuid.uuid4()}" for _ in range(args.count + args.warmup)]
            Inbox(store).record_many(
                [(Delivery(delivery_id, "issue_comment", payload, body), InboxStatus.QUEUED) for delivery_id in ids]
            )
            bus = RedisStreamBus(args.redis_url, stream=stream, group="waooaw-bench")
            for n in range(WORKERS):
                command = [sys.executable, __file__, "--serve-worker", "--database-url", database_url]
                command += ["--redis-url", args.redis_url, "--stream", stream, "--name", f"worker-{n + 1}"]
                workers.append(subprocess.Popen(command, cwd=ROOT))
            key = f"{stream}:latencies"
            # Warm up (connections, pools, the consumer group), not counted.
            for delivery_id in ids[: args.warmup]:
                await bus.publish(delivery_id)
            await _wait_for(client, key, args.warmup, WAIT_LIMIT * 2)
            await client.delete(key)

            measured = ids[args.warmup :]
            began = time.perf_counter()
            for index, delivery_id in enumerate(measured):
                await send_time(began + index / args.rate)
                await bus.publish(delivery_id)
            sent_for = time.perf_counter() - began
            await _wait_for(client, key, len(measured), WAIT_LIMIT)
            for item in await client.lrange(key, 0, -1):
                delivery_id, latency = json.loads(item)
                latencies.setdefault(delivery_id, latency)
            with store.reading() as session:
                messages = session.scalar(select(func.count()).select_from(AgentMessage)) or 0
                rows = session.execute(select(InboxRecord.status, func.count()).group_by(InboxRecord.status)).all()
                statuses = {status: count for status, count in rows}
            await bus.close()
        finally:
            for process in workers:
                process.terminate()
            for process in workers:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
            await client.delete(stream, f"{stream}:dead", f"{stream}:errors", f"{stream}:latencies")
            await client.aclose()
            store.dispose()

    ordered = sorted(value * 1000 for value in latencies.values())
    missed = args.count - len(ordered)
    print()
    print(
        f"messages bench: a handoff sent -> its addressee's execute() start, over Redis with {WORKERS} worker "
        f"processes, {args.count} handoffs offered at {args.rate:g}/s (sent in {sent_for:.1f} s)"
    )
    print(f"  latency p50 {percentile(ordered, 0.50):.1f} ms, p99 {percentile(ordered, 0.99):.1f} ms, ", end="")
    print(f"max {percentile(ordered, 1.0):.1f} ms; handed off {len(ordered)}, missed {missed}")
    print(f"  messages recorded {messages} (warm-up included: {args.warmup}); inbox statuses {statuses}")
    return 1 if missed else 0


async def _wait_for(client: aioredis.Redis, key: str, count: int, limit: float) -> None:
    deadline = time.monotonic() + limit
    while await client.llen(key) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.1)  # polls the bench's own result list, not the path measured


ROUTED_AGENTS = 100


def route_decisions(args: argparse.Namespace) -> int:
    """A coordinator's routing decisions per second with ROUTED_AGENTS agents in its CoE."""
    from agents.base import AgentEnv
    from agents.coordination import assignments
    from agents.coordination.coordinator import coordinator_for
    from agents.coordination.raci import Raci, TaskRaci
    from agents.hires import apply_config
    from agents.reputation.outcomes import Outcome, record

    waooaw_logging.configure("WARNING")
    with fresh_schema(args.pg_url, "bench_routing") as database_url:
        store = Store(database_url)
        try:
            store.upgrade()
            registry = Registry(store)
            names = [f"bench-agent-{n:03d}" for n in range(ROUTED_AGENTS)]
            for name in names:
                registry.register(type(name, (WowAgent,), {"name": name, "coe": "bench", "hire_required": True}))
            raci = Raci("bench", {"work": TaskRaci(responsible=names, accountable=names[0])}, "bench")
            coordinator = coordinator_for(raci)
            registry.register(coordinator)
            repo, installation = "bench/routing", 1
            with store.session() as session:
                apply_config(session, installation, repo, enable=names, disable=(), budgets={})
                record(
                    session, [Outcome(installation, repo, n, "pr_merged", f"pr-{i}") for i, n in enumerate(names[::3])]
                )
                for i, name in enumerate(names[::2]):  # every other agent has an open task already
                    task = assignments.Task(installation, repo, "bench", f"old:{i}", "work", f"c{i}", f"d{i}")
                    assignments.claim(session, task, name, names[0])
            agent = coordinator(AgentEnv(store=store, registry=registry))
            payload = {"installation": {"id": installation}, "repository": {"full_name": repo}}
            deadline = datetime.now(UTC) + timedelta(days=1)
            times: list[float] = []
            chosen: dict[str, int] = {}
            for i in range(args.warmup + args.count):
                event = Event.from_payload(f"route-{i}", "bench", payload)
                started = time.perf_counter()
                sent = agent.route(event, "work", f"c-{i}", deadline, None, key=f"work:{i}")
                if i >= args.warmup:
                    times.append(time.perf_counter() - started)
                    to = next(m.to for m in sent if isinstance(m, Message) and m.kind == "handoff")
                    chosen[to] = chosen.get(to, 0) + 1
            times.sort()
            total = sum(times)
            print(f"routing: {len(times)} decisions, {ROUTED_AGENTS} agents in the CoE, PostgreSQL")
            print(f"  {len(times) / total:.0f} decisions/s (one after the other)")
            p50, p99 = percentile(times, 0.5) * 1000, percentile(times, 0.99) * 1000
            print(f"  per decision: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
            print(f"  agents given a task: {len(chosen)}; most tasks to one agent: {max(chosen.values())}")
            return 0
        finally:
            store.dispose()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/messages.py",
        description="Latency from an agent's handoff to its addressee's execute() starting, over Redis, "
        f"with {WORKERS} worker processes and PostgreSQL.",
    )
    parser.add_argument("--count", type=int, default=600, help="handoffs measured (default 600)")
    parser.add_argument("--rate", type=float, default=20.0, help="handoffs offered per second (default 20)")
    parser.add_argument("--warmup", type=int, default=20, help="handoffs before measuring, not counted (default 20)")
    parser.add_argument("--routing", action="store_true", help="time a coordinator's routing decisions instead")
    parser.add_argument("--serve-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--stream", help=argparse.SUPPRESS)
    parser.add_argument("--name", help=argparse.SUPPRESS)
    add_service_options(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_worker:
        asyncio.run(serve_worker(args))
        return 0
    if args.routing:
        return route_decisions(args)
    return asyncio.run(drive(args))


if __name__ == "__main__":
    sys.exit(main())
