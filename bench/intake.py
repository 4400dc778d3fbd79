#!/usr/bin/env python
"""Webhook intake: the real app in production shape against a bare FastAPI app.

Starts two uvicorn servers in subprocesses, with identical settings (one worker
process, uvicorn's default loop and HTTP implementations, log level warning as
`waooaw serve` uses), each on a free loopback port:

  real  bot.wiring + bot.app (build_platform + create_app): inbox on PostgreSQL (a fresh schema,
        migrated with Store.upgrade()), bus on Redis (a unique stream; no worker
        consumes it: intake only publishes), HMAC secret checked;
  bare  a FastAPI app whose POST endpoint answers 202 and does nothing.

Both get the same load, one after the other: the real `pull_request/opened` payload,
signed with HMAC-SHA256, a unique X-GitHub-Delivery per request.

  closed loop (default)   --concurrency clients, each sending its next request when
                          the previous one is answered, for --seconds;
  open loop (--rate R)    R requests per second on a fixed schedule whatever the
                          replies; latency counts from the send time (when the
                          timer woke: bench.common.send_time), including any wait
                          for a free client, so queueing in the client is not hidden.

Then every delivery the real app answered 202 (queued or ignored) is looked up in
the inbox table, and every queued one on the Redis stream: "lost" counts the
missing ones. The schema and the stream are dropped afterwards.

    python bench/intake.py                       # closed loop, 32 clients, 10 s
    python bench/intake.py --rate 200 --seconds 60

This is a benchmark that prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import (
    TRANSPORT_ERRORS,
    Connection,
    Server,
    add_service_options,
    find_payload,
    fresh_schema,
    percentile,
    send_time,
    spawn_server,
    wait_ready,
)

SECRET = "bench-webhook-secret"
WEBHOOK_PATH = "/webhooks/github"
GITHUB_ANSWER_LIMIT = 10.0  # seconds: a slower answer counts as a failed delivery on GitHub
REQUEST_TIMEOUT = 30.0
MAX_SECONDS = 3600.0
MAX_RATE = 20_000.0
MAX_CONCURRENCY = 1024


# --------------------------------------------------------------------------- the servers
# The same file is the servers' entry point (`--serve real|bare`), so that both are
# started the same way and differ only in the app they run.


def bare_app():
    from fastapi import FastAPI, Response

    app = FastAPI(title="bare")

    @app.post("/webhooks/github", status_code=202)
    async def github_webhook() -> Response:
        return Response(status_code=202)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def real_app(database_url: str, redis_url: str, stream: str, event: str, extra_agent: bool, synthetic: int = 0):
    from agents.base import WowAgent
    from bot import logging as waooaw_logging
    from bot.app import create_app
    from bot.bus import RedisStreamBus
    from bot.publish import DryRunPublisher
    from bot.settings import Settings
    from bot.wiring import build_platform

    settings = Settings(
        WAOOAW_DATABASE_URL=database_url,
        WAOOAW_REDIS_URL=redis_url,
        GITHUB_WEBHOOK_SECRET=SECRET,
    )
    waooaw_logging.configure("WARNING")
    # build_platform's own bus would use the shared stream name; the bench's stream is its own.
    bus = RedisStreamBus(
        redis_url,
        stream=stream,
        group="waooaw-bench",
        visibility_timeout=settings.bus_visibility_timeout,
        max_deliveries=settings.bus_max_deliveries,
    )
    platform = build_platform(settings, bus=bus, publisher=DryRunPublisher())
    if extra_agent and event not in platform.registry.wake_event_names():

        class IntakeBenchAgent(WowAgent):
            """Declares the event, so intake queues it and publishes to the bus (nothing consumes it)."""

            name = "intake-bench"
            description = "bench/intake.py: makes the benchmarked event 'queued'"
            wakes_on = (event,)

            async def execute(self, event):
                return []

        platform.registry.register(IntakeBenchAgent)
    if synthetic:
        from bench.routing import synthetic_agents

        for agent in synthetic_agents(synthetic):
            platform.registry.register(agent)
    return create_app(platform, secret=SECRET)


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    if args.serve == "bare":
        app = bare_app()
    else:
        app = real_app(
            args.database_url, args.redis_url, args.stream, args.event, not args.catalog_only, args.synthetic_agents
        )
    from bot.wiring import freeze_startup_heap

    freeze_startup_heap()  # both servers, as `waooaw serve` does
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


# --------------------------------------------------------------------------- helpers


def start_server(kind: str, args: argparse.Namespace, log_dir: Path, **extra: str) -> Server:
    arguments = [kind]
    for key, value in extra.items():
        arguments += [f"--{key.replace('_', '-')}", value]
    if args.catalog_only:
        arguments.append("--catalog-only")
    if args.synthetic_agents:
        arguments += ["--synthetic-agents", str(args.synthetic_agents)]
    return spawn_server(kind, Path(__file__).resolve(), arguments, log_dir)


# --------------------------------------------------------------------------- the load


@dataclass
class Run:
    name: str
    mode: str
    seconds: float = 0.0
    sent: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, answered requests only
    statuses: Counter[int] = field(default_factory=Counter)
    answers: Counter[str] = field(default_factory=Counter)  # body "status" of 202 answers
    errors: Counter[str] = field(default_factory=Counter)  # transport errors, by type
    accepted: dict[str, str] = field(default_factory=dict)  # delivery id -> answer, for 202s
    client_cpu: float = 0.0

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    @property
    def non_202(self) -> int:
        return self.answered - self.statuses.get(202, 0) + sum(self.errors.values())

    def rate(self) -> float:
        return self.answered / self.seconds if self.seconds else 0.0

    def quantiles(self) -> tuple[float, float, float]:
        ordered = sorted(self.latencies)
        return (
            percentile(ordered, 0.50) * 1000,
            percentile(ordered, 0.99) * 1000,
            (ordered[-1] * 1000 if ordered else float("nan")),
        )

    def late(self) -> int:
        return sum(1 for latency in self.latencies if latency > GITHUB_ANSWER_LIMIT)


class Load:
    def __init__(self, body: bytes, event: str) -> None:
        self.body = body
        self.event = event
        self.signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()

    def headers(self, delivery_id: str) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/bench",
            "X-GitHub-Event": self.event,
            "X-GitHub-Delivery": delivery_id,
            "X-GitHub-Hook-ID": "1",
            "X-Hub-Signature-256": self.signature,
        }

    async def one(self, client: Connection, run: Run, since: float | None = None) -> None:
        delivery_id = str(uuid.uuid4())
        started = since if since is not None else time.perf_counter()
        run.sent += 1
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                status, payload = await client.request("POST", WEBHOOK_PATH, self.headers(delivery_id), self.body)
        except TRANSPORT_ERRORS as exc:
            run.errors[type(exc).__name__] += 1
            await client.close()
            return
        run.latencies.append(time.perf_counter() - started)
        run.statuses[status] += 1
        if status == 202:
            try:
                answer = json.loads(payload).get("status", "?")
            except ValueError:
                answer = "-"  # the bare app answers with an empty body
            run.answers[answer] += 1
            run.accepted[delivery_id] = answer

    async def closed_loop(self, server: Server, name: str, seconds: float, concurrency: int) -> Run:
        run = Run(name, f"closed loop, {concurrency} clients")
        # One keep-alive connection per client, on bench.common's minimal HTTP client: the load
        # generator shares the machine with the server, and a general client (httpx) spent
        # more CPU per request than the bare server it measured.
        clients = [Connection("127.0.0.1", server.port) for _ in range(concurrency)]
        try:
            deadline = time.perf_counter() + seconds

            async def client_loop(client: Connection) -> None:
                while time.perf_counter() < deadline:
                    await self.one(client, run)

            cpu, started = time.process_time(), time.perf_counter()
            await asyncio.gather(*(client_loop(client) for client in clients))
            run.seconds = time.perf_counter() - started
            run.client_cpu = (time.process_time() - cpu) / run.seconds
        finally:
            await asyncio.gather(*(client.close() for client in clients))
        return run

    async def open_loop(self, server: Server, name: str, seconds: float, rate: float, connections: int) -> Run:
        run = Run(name, f"open loop, {rate:g}/s offered")
        total = int(rate * seconds)
        idle: asyncio.Queue[Connection] = asyncio.Queue()  # clients (one connection each) not busy
        clients = [Connection("127.0.0.1", server.port) for _ in range(connections)]
        for client in clients:
            idle.put_nowait(client)

        async def send(since: float) -> None:
            client = await idle.get()  # time waiting here counts: latency runs from `since`
            try:
                await self.one(client, run, since)
            finally:
                idle.put_nowait(client)

        try:
            tasks: list[asyncio.Task[None]] = []
            cpu, started = time.process_time(), time.perf_counter()
            for i in range(total):
                # The fixed schedule: send at `rate` whatever the replies.
                tasks.append(asyncio.create_task(send(await send_time(started + i / rate))))
            offered_seconds = time.perf_counter() - started
            await asyncio.gather(*tasks)
            run.seconds = time.perf_counter() - started  # until the last answer
            run.client_cpu = (time.process_time() - cpu) / run.seconds
            run.mode += f" (scheduled {total} in {offered_seconds:.1f} s)"
        finally:
            await asyncio.gather(*(client.close() for client in clients))
        return run


async def warm_up(load: Load, server: Server, seconds: float) -> None:
    """Open connections, fill pools and caches; the figures do not count this."""
    if seconds > 0:
        await load.closed_loop(server, "warm-up", seconds, 4)


# --------------------------------------------------------------------------- checks


def lost_deliveries(pg_url: str, run: Run) -> tuple[int, int]:
    """(missing from the inbox, status in the inbox differing from the answer) among 202s."""
    from sqlalchemy import create_engine, text

    engine = create_engine(pg_url)
    try:
        with engine.connect() as connection:
            rows = dict(connection.execute(text("SELECT delivery_id, status FROM inbox")).all())
    finally:
        engine.dispose()
    missing = sum(1 for delivery_id in run.accepted if delivery_id not in rows)
    differing = sum(1 for d, answer in run.accepted.items() if d in rows and rows[d] != answer)
    return missing, differing


def not_on_stream(redis_url: str, stream: str, run: Run) -> int:
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        published: set[str] = set()
        cursor = "-"
        while True:
            batch = client.xrange(stream, min=cursor, max="+", count=10_000)
            published.update(fields.get("delivery", "") for _, fields in batch)
            if len(batch) < 10_000:
                break
            cursor = "(" + batch[-1][0]
    finally:
        client.close()
    return sum(1 for delivery_id, answer in run.accepted.items() if answer == "queued" and delivery_id not in published)


# --------------------------------------------------------------------------- main


def print_table(runs: list[Run], lost: tuple[int, int, int] | None, args: argparse.Namespace) -> None:
    print()
    print(
        f"intake bench: {runs[0].mode}, {args.seconds:g} s per server, payload {args.payload} ({args.body_bytes} bytes)"
    )
    print(f"{'':<28}" + "".join(f"{run.name:>14}" for run in runs))
    rows = [
        ("requests answered", lambda r: f"{r.answered}"),
        ("requests/s (achieved)", lambda r: f"{r.rate():.0f}"),
        ("latency p50 (ms)", lambda r: f"{r.quantiles()[0]:.2f}"),
        ("latency p99 (ms)", lambda r: f"{r.quantiles()[1]:.2f}"),
        ("latency max (ms)", lambda r: f"{r.quantiles()[2]:.2f}"),
        ("non-202 (incl. errors)", lambda r: f"{r.non_202}"),
        (f"answers over {GITHUB_ANSWER_LIMIT:g} s", lambda r: f"{r.late()}"),
        ("load generator CPU", lambda r: f"{r.client_cpu * 100:.0f}%"),
    ]
    for label, cell in rows:
        print(f"{label:<28}" + "".join(f"{cell(run):>14}" for run in runs))
    by_name = {run.name: run for run in runs}
    if "real" in by_name and "bare" in by_name:
        real, bare = by_name["real"], by_name["bare"]
        real_q, bare_q = real.quantiles(), bare.quantiles()
        print(
            f"ratio real/bare: requests/s {real.rate() / bare.rate():.2f}, "
            f"p50 {real_q[0] / bare_q[0]:.2f}x, p99 {real_q[1] / bare_q[1]:.2f}x"
            if bare.rate() and bare_q[0] and bare_q[1]
            else "ratio real/bare: n/a"
        )
    for run in runs:
        details = dict(run.statuses)
        if run.errors:
            details.update({f"error {name}": count for name, count in run.errors.items()})
        print(f"{run.name}: answers {dict(run.answers)}; statuses {details}")
    if lost is not None:
        missing, differing, unpublished = lost
        print(
            f"lost: {missing}  (202 answers not in the inbox; status differs: {differing}; "
            f"queued but not on the stream: {unpublished})"
        )
    if any(run.client_cpu > 0.9 for run in runs):
        print("note: the load generator used ~a whole CPU: figures near its ceiling measure the client, not the server")


async def drive(args: argparse.Namespace, collect: list[Run] | None = None) -> int:
    """Run the servers under load and print the table; `collect` (when given) receives the runs."""
    from agents.store.db import Store

    payload_path = find_payload(args.payload)
    body = payload_path.read_bytes()
    json.loads(body)  # a real payload, and valid JSON
    args.body_bytes = len(body)
    event = args.event or args.payload.split("/", 1)[0]
    load = Load(body, event)
    tag = uuid.uuid4().hex[:10]
    stream = f"waooaw:bench:intake:{tag}"
    log_dir = Path(tempfile.mkdtemp(prefix=f"waooaw-bench-intake-{tag}-"))

    servers: list[Server] = []
    runs: list[Run] = []
    lost: tuple[int, int, int] | None = None
    with fresh_schema(args.pg_url, "bench_intake") as database_url:
        try:
            store = Store(database_url)
            store.upgrade()
            store.dispose()

            wanted = [name for name in ("real", "bare") if args.only in (name, "both")]
            for name in wanted:
                extra = (
                    {"database_url": database_url, "redis_url": args.redis_url, "stream": stream, "event": event}
                    if name == "real"
                    else {}
                )
                server = start_server(name, args, log_dir, **extra)
                servers.append(server)
                await wait_ready(server)
            for server in servers:  # one after the other: they share the machine's CPUs
                await warm_up(load, server, args.warmup)
                if args.rate:
                    run = await load.open_loop(server, server.name, args.seconds, args.rate, args.connections)
                else:
                    run = await load.closed_loop(server, server.name, args.seconds, args.concurrency)
                runs.append(run)
                print(f"{server.name}: {run.answered} answered in {run.seconds:.1f} s", file=sys.stderr)
            real = next((run for run in runs if run.name == "real"), None)
            if real is not None:
                lost = (*lost_deliveries(database_url, real), not_on_stream(args.redis_url, stream, real))
        finally:
            for server in servers:
                server.stop()
            try:
                import redis

                client = redis.Redis.from_url(args.redis_url)
                client.delete(stream, f"{stream}:dead", f"{stream}:errors")
                client.close()
            except Exception as exc:  # noqa: BLE001 - clean-up reports, it does not hide the result
                print(f"warning: could not delete the Redis stream {stream}: {exc!r}", file=sys.stderr)
    if collect is not None:
        collect.extend(runs)
    if runs:
        print_table(runs, lost, args)
    for server in servers:
        log = server.log_path.read_text().strip()
        if log:
            print(f"\n{server.name} server log:\n{log[-2000:]}", file=sys.stderr)
    shutil.rmtree(log_dir, ignore_errors=True)
    failed = lost is not None and (lost[0] or lost[2])
    return 1 if failed else 0


def positive(kind, upper):
    def parse(text: str):
        value = kind(text)
        if not 0 < value <= upper:
            raise argparse.ArgumentTypeError(f"must be > 0 and <= {upper}")
        return value

    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/intake.py",
        description="Webhook intake throughput and latency: the real app (PostgreSQL inbox, Redis bus) "
        "against a bare FastAPI app answering 202, under the same load.",
    )
    parser.add_argument(
        "--seconds", type=positive(float, MAX_SECONDS), default=10.0, help="measured duration per server (default 10)"
    )
    parser.add_argument(
        "--concurrency",
        type=positive(int, MAX_CONCURRENCY),
        default=32,
        help="closed loop: concurrent clients (default 32)",
    )
    parser.add_argument(
        "--rate",
        type=positive(float, MAX_RATE),
        default=None,
        help="open loop: offered requests per second (fixed schedule)",
    )
    parser.add_argument(
        "--connections",
        type=positive(int, MAX_CONCURRENCY),
        default=64,
        help="open loop: most requests in flight, one connection each (default 64)",
    )
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="seconds of warm-up per server, not counted (default 1)"
    )
    parser.add_argument(
        "--only", choices=("both", "real", "bare"), default="both", help="which servers to drive (default both)"
    )
    parser.add_argument(
        "--payload",
        default="pull_request/opened.payload.json",
        help="fixture under tests/fixtures/webhooks or ../shared/fixtures/webhooks",
    )
    parser.add_argument("--event", default=None, help="X-GitHub-Event (default: the payload's directory name)")
    parser.add_argument(
        "--catalog-only",
        action="store_true",
        help="run the agent catalogue as shipped; by default, when no active agent declares the event, a no-op "
        "agent declaring it is added so that intake answers 'queued' and publishes to Redis (production shape)",
    )
    parser.add_argument(
        "--synthetic-agents",
        type=int,
        default=0,
        help="also register this many spec-like agents (bench/routing.py's): intake's table at catalogue scale",
    )
    add_service_options(parser)
    # Internal: the same file runs the servers.
    parser.add_argument("--serve", choices=("real", "bare"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--stream", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        serve(args)
        return 0
    return asyncio.run(drive(args))


if __name__ == "__main__":
    sys.exit(main())
