#!/usr/bin/env python
"""Context API: store and retrieve latency at 1, 100 and 1,000 concurrent clients, and throughput.

Starts the real app (build_platform + create_app, as `waooaw serve` runs it with
PostgreSQL and Redis: a fresh schema, migrated; the Redis cache and rate limiter) in a
uvicorn subprocess on a free loopback port. Every client has a token of its own (the
default rate limit, 50/s burst 100, applies) and a context of its own, so writes never
conflict: a client's store is a PUT with the If-Match of its previous write, a
retrieve a GET of its context's latest version.

  floor       GET /healthz under the same load: what the server, the framework and this
              machine cost before any of the API's work, to read the figures against;
  latency     open loop: the offered load (--store-rate, --retrieve-rate requests/s in
              all) is spread evenly over the clients, each sending on a fixed schedule
              over its own keep-alive connection. A client held up by its previous
              request counts latency from the scheduled send time (no coordinated
              omission), an idle one from when its timer woke: the load generator's
              own timer lateness is not the server's (bench.common.send_time). Below
              saturation, as DESIGN.md asks.
  throughput  closed loop: 100 clients, each sending its next request when the previous
              one is answered, for --seconds.

At the end every client's context must be at the version its acknowledged writes say
(no write lost). The schema, the tokens' and contexts' Redis keys are removed.

    python bench/context.py
    python bench/context.py --seconds 20 --store-rate 150 --retrieve-rate 300

The default offered loads are about a third of what one server process sustains on a
2-CPU machine that also runs PostgreSQL, Redis and this load generator.

This is a benchmark that prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import resource
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import (
    DEFAULT_PG_URL,
    DEFAULT_REDIS_URL,
    TRANSPORT_ERRORS,
    Connection,
    Server,
    fresh_schema,
    send_time,
    spawn_server,
    wait_ready,
)

LEVELS = (1, 100, 1000)
THROUGHPUT_CLIENTS = 100
PER_CLIENT_RATE = 40.0  # requests/s one client offers at most: under the default token limit, 50/s
REQUEST_TIMEOUT = 30.0


def raise_file_limit() -> None:
    """1,000 clients are 1,000 sockets on each side."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


# --------------------------------------------------------------------------- the server


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    from bot import logging as waooaw_logging
    from bot.app import create_app
    from bot.settings import Settings
    from bot.wiring import build_platform, freeze_startup_heap

    raise_file_limit()
    settings = Settings(
        WAOOAW_DATABASE_URL=args.database_url, WAOOAW_REDIS_URL=args.redis_url, GITHUB_WEBHOOK_SECRET="bench-secret"
    )
    waooaw_logging.configure("WARNING")
    app = create_app(build_platform(settings), secret="bench-secret")
    freeze_startup_heap()  # as `waooaw serve` does
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", backlog=4096)


def start_server(database_url: str, redis_url: str, log_dir: Path) -> Server:
    return spawn_server(
        "server", Path(__file__).resolve(), ["--database-url", database_url, "--redis-url", redis_url], log_dir
    )


# --------------------------------------------------------------------------- the clients


@dataclass
class Client:
    index: int
    token: str
    connection: Connection
    path: str
    version: int = 0
    acknowledged: int = 0  # writes answered 201

    def body(self) -> bytes:
        step = self.acknowledged
        return orjson.dumps(
            {
                "data": {
                    "phase": "research",
                    "step": step,
                    "findings": [
                        {"id": n, "claim": f"finding {n} of step {step}", "confidence": 0.8} for n in range(5)
                    ],
                    "notes": "lorem ipsum dolor sit amet " * 8,
                },
                "summary": f"bench client {self.index} at step {step}",
                "tags": ["bench", "coe"],
            }
        )


@dataclass
class Run:
    op: str
    clients: int
    mode: str
    offered: float = 0.0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    @property
    def failures(self) -> int:
        ok = 201 if self.op == "store" else 200  # healthz: the framework's floor, for comparison
        return self.answered - self.statuses.get(ok, 0) + sum(self.errors.values())

    def quantile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))] * 1000


async def one(client: Client, op: str, run: Run, since: float | None = None) -> None:
    """One request; its latency counts from `since` (bench.common.send_time), else from now."""
    started = since if since is not None else time.perf_counter()
    headers = {"Authorization": f"Bearer {client.token}"}
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT):
            if op == "store":
                headers["Content-Type"] = "application/json"
                if client.version:
                    headers["If-Match"] = f'"{client.version}"'
                status, payload = await client.connection.request("PUT", client.path, headers, client.body())
            elif op == "healthz":  # the floor: the same server and client, none of the API's work
                status, payload = await client.connection.request("GET", "/healthz", {})
            else:
                status, payload = await client.connection.request("GET", client.path, headers)
    except TRANSPORT_ERRORS as exc:
        run.errors[type(exc).__name__] += 1
        await client.connection.close()
        return
    run.latencies.append(time.perf_counter() - started)
    run.statuses[status] += 1
    if op == "store" and status == 201:
        client.version = orjson.loads(payload)["version"]
        client.acknowledged += 1


async def open_loop(clients: list[Client], op: str, rate: float, seconds: float) -> Run:
    """`rate` requests/s in all, spread evenly: client i sends at start + (i + k·n)/rate, k = 0, 1, …"""
    n = len(clients)
    run = Run(op, n, "open loop", offered=rate)
    per_client = max(1, int(rate * seconds / n))
    start = time.perf_counter() + 0.05

    async def client_loop(client: Client, position: int) -> None:
        for k in range(per_client):
            # The fixed schedule, whatever the replies.
            await one(client, op, run, await send_time(start + (position + k * n) / rate))

    await asyncio.gather(*(client_loop(client, position) for position, client in enumerate(clients)))
    run.seconds = time.perf_counter() - start
    return run


async def closed_loop(clients: list[Client], op: str, seconds: float) -> Run:
    run = Run(op, len(clients), "closed loop")
    deadline = time.perf_counter() + seconds

    async def client_loop(client: Client) -> None:
        while time.perf_counter() < deadline:
            await one(client, op, run)

    started = time.perf_counter()
    await asyncio.gather(*(client_loop(client) for client in clients))
    run.seconds = time.perf_counter() - started
    return run


def open_clients(base: str, tokens: list[str], installation: int) -> list[Client]:
    host, port = base.removeprefix("http://").split(":")
    return [
        Client(
            index,
            token,
            Connection(host, int(port)),
            f"/api/v1/contexts/bench/repo-{installation}/wowdomain/job-{index}",
        )
        for index, token in enumerate(tokens)
    ]


async def warm_up(clients: list[Client]) -> None:
    """Open every connection and create every context (version 1): not counted."""
    gate = asyncio.Semaphore(100)
    stores, retrieves = Run("store", len(clients), "warm-up"), Run("retrieve", len(clients), "warm-up")

    async def first(client: Client) -> None:
        async with gate:
            await one(client, "store", stores)
            await one(client, "retrieve", retrieves)

    await asyncio.gather(*(first(client) for client in clients))
    for run in (stores, retrieves):
        if run.failures:
            raise SystemExit(f"warm-up {run.op} failed: statuses {dict(run.statuses)}, errors {dict(run.errors)}")


# --------------------------------------------------------------------------- main


def make_tokens(database_url: str, installation: int, count: int) -> list[str]:
    from agents import tokens
    from agents.store.db import Store

    store = Store(database_url)
    try:
        with store.session() as session:
            return [tokens.issue(session, installation_id=installation, created_by="bench").token for _ in range(count)]
    finally:
        store.dispose()


def final_versions(database_url: str, installation: int) -> dict[str, int]:
    from sqlalchemy import func, select

    from agents.context.models import ContextVersion
    from agents.store.db import Store

    store = Store(database_url)
    try:
        with store.reading() as session:
            rows = session.execute(
                select(ContextVersion.scope, func.max(ContextVersion.version))
                .where(ContextVersion.installation_id == installation)
                .group_by(ContextVersion.scope)
            ).all()
        return {scope: version for scope, version in rows}
    finally:
        store.dispose()


def clean_redis(redis_url: str, installation: int, tokens: list[str]) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"waooaw:ctx:\\[{installation},*", count=1000))
        keys += [f"waooaw:api:rate:{token.split('_')[1]}" for token in tokens]
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
    finally:
        client.close()


def print_table(runs: list[Run], throughput: list[Run], args: argparse.Namespace) -> None:
    print()
    print(
        f"context bench: PostgreSQL + Redis, one server process; {args.seconds:g} s per run; "
        f"{os.cpu_count()} CPUs shared by server, databases and load"
    )
    print(
        f"latency, open loop (offered: store {args.store_rate:g}/s, retrieve {args.retrieve_rate:g}/s in all; "
        f"one client {PER_CLIENT_RATE:g}/s at most):"
    )
    print(
        f"{'clients':>8} {'op':<9} {'answered':>9} {'offered/s':>10} {'achieved/s':>11} "
        f"{'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>7}"
    )
    for run in runs:
        print(
            f"{run.clients:>8} {run.op:<9} {run.answered:>9} {run.offered:>10.0f} {run.answered / run.seconds:>11.0f} "
            f"{run.quantile(0.50):>8.2f} {run.quantile(0.95):>8.2f} {run.quantile(0.99):>8.2f} "
            f"{run.quantile(1.0):>8.2f} {run.failures:>7}"
        )
    print(f"throughput, closed loop ({THROUGHPUT_CLIENTS} clients, each sending when answered):")
    for run in throughput:
        print(
            f"{run.clients:>8} {run.op:<9} {run.answered:>9} {'-':>10} {run.answered / run.seconds:>11.0f} "
            f"{run.quantile(0.50):>8.2f} {run.quantile(0.95):>8.2f} {run.quantile(0.99):>8.2f} "
            f"{run.quantile(1.0):>8.2f} {run.failures:>7}"
        )
    for run in runs + throughput:
        if run.failures:
            print(f"  {run.clients} {run.op} ({run.mode}): statuses {dict(run.statuses)}, errors {dict(run.errors)}")
    target = {r.op: r for r in runs if r.clients == 100}
    if {"healthz", "store", "retrieve"} <= set(target):
        # This machine's noise moves every figure; the floor under the same load says how much.
        floor = target["healthz"].quantile(0.95)
        print(
            f"at 100 clients, against the floor (/healthz p95 {floor:.2f} ms): "
            f"store p95 {target['store'].quantile(0.95) / floor:.1f}×, "
            f"retrieve p95 {target['retrieve'].quantile(0.95) / floor:.1f}×"
        )
    if "store" in target and "retrieve" in target:
        store_p95, retrieve_p95 = target["store"].quantile(0.95), target["retrieve"].quantile(0.95)
        print(
            f"targets at 100 clients: store p95 {store_p95:.2f} ms (≤ 5: {'met' if store_p95 <= 5 else 'MISSED'}), "
            f"retrieve p95 {retrieve_p95:.2f} ms (≤ 3: {'met' if retrieve_p95 <= 3 else 'MISSED'}); "
            f"errors at 1,000 clients: {sum(r.failures for r in runs if r.clients == 1000)}"
        )


async def drive(args: argparse.Namespace) -> int:
    from agents.store.db import Store

    raise_file_limit()
    tag = uuid.uuid4().hex[:10]
    installation = random.randrange(10**9, 10**12)
    log_dir = Path(tempfile.mkdtemp(prefix=f"waooaw-bench-context-{tag}-"))
    server: Server | None = None
    tokens: list[str] = []
    clients: list[Client] = []
    runs: list[Run] = []
    throughput: list[Run] = []
    lost = 0
    with fresh_schema(args.pg_url, "bench_context") as database_url:
        try:
            store = Store(database_url)
            store.upgrade()
            store.dispose()
            tokens = make_tokens(database_url, installation, max(*args.levels, THROUGHPUT_CLIENTS))
            server = start_server(database_url, args.redis_url, log_dir)
            await wait_ready(server)
            clients = open_clients(server.url, tokens, installation)
            await warm_up(clients)
            for level in args.levels:
                for op, rate in (
                    ("healthz", args.retrieve_rate),
                    ("store", args.store_rate),
                    ("retrieve", args.retrieve_rate),
                ):
                    # No client offers more than its token's rate limit allows (default 50/s).
                    rate = min(rate, level * PER_CLIENT_RATE)
                    run = await open_loop(clients[:level], op, rate, args.seconds)
                    runs.append(run)
                    print(
                        f"{level} clients {op}: {run.answered} answered, p95 {run.quantile(0.95):.2f} ms",
                        file=sys.stderr,
                    )
            for op in ("store", "retrieve"):
                run = await closed_loop(clients[:THROUGHPUT_CLIENTS], op, args.seconds)
                throughput.append(run)
                print(f"throughput {op}: {run.answered / run.seconds:.0f}/s", file=sys.stderr)
            versions = final_versions(database_url, installation)
            lost = sum(1 for c in clients if versions.get(f"job-{c.index}", 0) != c.acknowledged)
        finally:
            await asyncio.gather(*(client.connection.close() for client in clients), return_exceptions=True)
            if server is not None:
                server.stop()
            try:
                clean_redis(args.redis_url, installation, tokens)
            except Exception as exc:  # noqa: BLE001 - clean-up reports, it does not hide the result
                print(f"warning: Redis keys not removed: {exc!r}", file=sys.stderr)
    print_table(runs, throughput, args)
    print(f"lost writes: {lost} (clients whose context is not at the version their acknowledged writes say)")
    if server is not None:
        log = server.log_path.read_text().strip()
        if log:
            print(f"\nserver log:\n{log[-2000:]}", file=sys.stderr)
    shutil.rmtree(log_dir, ignore_errors=True)
    failed = lost or any(run.failures for run in runs + throughput)
    return 1 if failed else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/context.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each run (default 10)")
    parser.add_argument(
        "--store-rate", type=float, default=100.0, help="open loop: stores offered per second in all (default 100)"
    )
    parser.add_argument(
        "--retrieve-rate",
        type=float,
        default=200.0,
        help="open loop: retrieves offered per second in all (default 200)",
    )
    parser.add_argument(
        "--levels", type=int, nargs="+", default=list(LEVELS), help="concurrent clients (default 1 100 1000)"
    )
    parser.add_argument(
        "--pg-url",
        default=DEFAULT_PG_URL,
        help=f"PostgreSQL; a fresh schema is created and dropped (default {DEFAULT_PG_URL})",
    )
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help=f"Redis (default {DEFAULT_REDIS_URL})")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        serve(args)
        return 0
    return asyncio.run(drive(args))


if __name__ == "__main__":
    sys.exit(main())
