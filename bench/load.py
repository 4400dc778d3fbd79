#!/usr/bin/env python
"""End to end under load, with a fault: deliveries in, comments out, one worker killed midway.

Everything runs as in production, each in a process of its own: `waooaw serve` (uvicorn,
intake only), `waooaw worker` × --workers consuming a Redis stream, PostgreSQL (a fresh
schema, migrated, dropped afterwards), and the fake GitHub (tests/fakes/github.py, served
by bench/timed_github.py) that the workers reach through githubkit with App auth.

Each delivery is the real `issue_comment.created` payload with the comment `/waooaw help`
on an issue of its own (and a comment id of its own), from one of --installations in turn
(GitHub's limits on creating content are per installation), signed with HMAC-SHA256, sent
at a fixed offered rate (open loop: the schedule does not wait for answers). Its outputs are the
Concierge's: an 👀 reaction on the comment and one help comment on the issue, carrying the
issue's marker. Halfway through each step the bench SIGKILLs worker 1 — at a moment it is
running an agent when it runs one within a couple of seconds — and starts a new worker.

After a step, once every accepted delivery is finished in the inbox and the stream is empty
(nothing can publish any more), the fake GitHub's record is compared with the deliveries:

  lost        accepted (202 queued) but its comment or its reaction is not on GitHub
  duplicated  more than one help comment on its issue
  latency     from the delivery's send time to the fake GitHub's answer to its last call

Without --rate the rate is searched: doubled from --start-rate while a step holds (every
delivery accepted, none lost or duplicated, p99 ≤ 1 s), then narrowed between the last
rate that held and the first that did not. The highest that held is the sustained rate.

    python bench/load.py --quick                  # a short run: 40 deliveries at 5 and 10/s
    python bench/load.py                          # 1,000 deliveries a step, rate searched
    python bench/load.py --rate 20 --n 2000       # one step at 20/s (--rate again for more steps)

This is a benchmark that prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
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
from bench.fleet import SECRET, Fleet, product_env
from bench.timed_github import COMMENT_ID_BASE, GitHubRecord

PAYLOAD = "issue_comment/created.with-installation.payload.json"
WEBHOOK_PATH = "/webhooks/github"
P99_LIMIT = 1.0  # seconds: a step holds when its p99 is within it
MAX_RATE = 5_000.0
MAX_N = 1_000_000
QUICK = {"n": 40, "rates": [5.0, 10.0], "warmup": 5}


# --------------------------------------------------------------------------- the load


@dataclass
class Delivery:
    delivery_id: str
    number: int  # its issue: what every output of it is found by
    body: bytes
    headers: dict[str, str]
    sent: float = 0.0  # perf_counter its latency counts from
    answer: str = ""  # intake's answer: its body's status, or the HTTP status or error
    latency: float | None = None  # seconds, to its last GitHub call, once its outputs are there


class Deliveries:
    """Signed `/waooaw help` comments, each on an issue of its own."""

    def __init__(self, installations: int) -> None:
        self.payload = json.loads(find_payload(PAYLOAD).read_bytes())
        self.payload["comment"]["body"] = "/waooaw help"
        self.installations = installations
        self.next_number = 1

    def make(self, count: int) -> list[Delivery]:
        from bot.webhooks import sign

        made = []
        for number in range(self.next_number, self.next_number + count):
            self.payload["issue"]["number"] = number
            self.payload["comment"]["id"] = COMMENT_ID_BASE + number
            # Round robin: GitHub's limits (and the platform's pacing) are per installation.
            self.payload["installation"]["id"] = 1 + number % self.installations
            body = json.dumps(self.payload).encode()
            delivery_id = str(uuid.uuid4())
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "GitHub-Hookshot/bench",
                "X-GitHub-Event": "issue_comment",
                "X-GitHub-Delivery": delivery_id,
                "X-GitHub-Hook-ID": "1",
                "X-Hub-Signature-256": sign(SECRET, body),
            }
            made.append(Delivery(delivery_id, number, body, headers))
        self.next_number += count
        return made


@dataclass
class Step:
    rate: float
    deliveries: list[Delivery]
    fault: str = "no fault"
    offered_seconds: float = 0.0
    settled: bool = False
    inbox: dict[str, tuple[str, int]] = field(default_factory=dict)
    lost: list[Delivery] = field(default_factory=list)
    duplicated: list[Delivery] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)  # seconds, sorted
    cpu: Counter[str] = field(default_factory=Counter)  # CPU seconds by role
    down: tuple[float, float] = (math.inf, math.inf)  # worker 1 killed until its replacement consumed

    @property
    def accepted(self) -> list[Delivery]:
        return [d for d in self.deliveries if d.answer == "queued"]

    @property
    def processed(self) -> int:
        return sum(1 for status, _ in self.inbox.values() if status == "done")

    @property
    def redelivered(self) -> int:
        return sum(1 for _, attempts in self.inbox.values() if attempts > 1)

    def quantile(self, fraction: float) -> float:
        return percentile(self.latencies, fraction)

    def p99_by_workers(self) -> str:
        """p99 of the deliveries the kill caught, of those sent while worker 1 was down, and of the rest."""
        start, end = self.down
        groups: dict[str, list[float]] = {"caught by the kill": [], "sent while worker 1 was down": [], "the rest": []}
        for d in self.deliveries:
            if d.latency is None:
                continue
            if self.inbox.get(d.delivery_id, ("", 1))[1] > 1:
                groups["caught by the kill"].append(d.latency)
            elif start <= d.sent < end:
                groups["sent while worker 1 was down"].append(d.latency)
            else:
                groups["the rest"].append(d.latency)
        return "; ".join(
            f"{name}: {len(values)}, p99 {percentile(sorted(values), 0.99) * 1000:.0f} ms"
            for name, values in groups.items()
            if values
        )

    @property
    def holds(self) -> bool:
        return (
            len(self.accepted) == len(self.deliveries)
            and not self.lost
            and not self.duplicated
            and self.quantile(0.99) <= P99_LIMIT
        )


async def offer(app_port: int, step: Step, connections: int, fleet: Fleet | None) -> None:
    """Send the step's deliveries on a fixed schedule; halfway, the fault (when a fleet is given)."""
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    clients = [Connection("127.0.0.1", app_port) for _ in range(connections)]
    for client in clients:
        idle.put_nowait(client)

    async def send(delivery: Delivery) -> None:
        client = await idle.get()  # a wait here counts: the latency runs from `sent`
        try:
            status, payload = await client.request("POST", WEBHOOK_PATH, delivery.headers, delivery.body)
            delivery.answer = json.loads(payload).get("status", "?") if status == 202 else f"HTTP {status}"
        except TRANSPORT_ERRORS as exc:
            delivery.answer = type(exc).__name__
            await client.close()
        finally:
            idle.put_nowait(client)

    tasks: list[asyncio.Task[object]] = []
    started = time.perf_counter()
    try:
        for index, delivery in enumerate(step.deliveries):
            if fleet is not None and index == len(step.deliveries) // 2:
                tasks.append(asyncio.create_task(fleet.fault()))
            delivery.sent = await send_time(started + index / step.rate)
            tasks.append(asyncio.create_task(send(delivery)))
        step.offered_seconds = time.perf_counter() - started
        results = await asyncio.gather(*tasks)
        step.fault = next((result for result in results if isinstance(result, str)), step.fault)
    finally:
        await asyncio.gather(*(client.close() for client in clients))


async def settle(fleet: Fleet, step: Step, timeout: float) -> None:
    """Wait (bounded) until every accepted delivery is finished and the stream is empty."""
    ids = [d.delivery_id for d in step.accepted]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        step.inbox = await asyncio.to_thread(fleet.inbox, ids)
        finished = all(step.inbox.get(i, ("", 0))[0] in ("done", "dead", "ignored") for i in ids)
        if finished and await fleet.depth() == 0:
            step.settled = True
            return
        await asyncio.sleep(0.2)  # bounded wait for the workers to finish, not a timing assert


def judge(step: Step, github: GitHubRecord) -> None:
    for delivery in step.accepted:
        comments = github.help_comments[delivery.number]
        if comments == 0 or github.reactions[delivery.number] == 0:
            step.lost.append(delivery)
            continue
        if comments > 1:
            step.duplicated.append(delivery)
        delivery.latency = github.last_call[delivery.number] - delivery.sent
        step.latencies.append(delivery.latency)
    step.latencies.sort()


async def run_step(
    fleet: Fleet,
    github: GitHubRecord,
    deliveries: Deliveries,
    rate: float,
    count: int,
    args: argparse.Namespace,
    fault: bool = True,
) -> Step:
    step = Step(rate, deliveries.make(count))
    assert fleet.app is not None
    await fleet.ready()
    fleet.measure()
    await offer(fleet.app.port, step, args.connections, fleet if fault else None)
    await settle(fleet, step, args.visibility_timeout * 3 + 60)
    step.cpu = fleet.cpu.finish()
    step.down, fleet.down = fleet.down, (math.inf, math.inf)
    await github.update()
    judge(step, github)
    return step


# --------------------------------------------------------------------------- the figures


def describe(step: Step) -> str:
    answers = Counter(d.answer for d in step.deliveries)
    verdict = "holds" if step.holds else "does not hold"
    return (
        f"{step.rate:g}/s: offered {len(step.deliveries)} in {step.offered_seconds:.1f} s, "
        f"accepted {len(step.accepted)}, "
        f"processed {step.processed}, lost {len(step.lost)}, duplicated {len(step.duplicated)}, "
        f"p50 {step.quantile(0.5) * 1000:.0f} ms, p99 {step.quantile(0.99) * 1000:.0f} ms, "
        f"max {step.quantile(1.0) * 1000:.0f} ms; redelivered {step.redelivered}; {step.fault}; "
        f"CPU {sum(step.cpu.values()) / max(len(step.deliveries), 1) * 1000:.1f} ms a delivery; "
        f"{'' if step.settled else 'NOT SETTLED; '}answers {dict(answers)}: {verdict}"
    )


def print_table(steps: list[Step], args: argparse.Namespace) -> None:
    print()
    print(
        f"load bench: {args.workers} `waooaw worker` + `waooaw serve` + PostgreSQL + Redis + the fake GitHub, "
        f"{args.n} `/waooaw help` deliveries a step, worker 1 SIGKILLed and restarted halfway, "
        f"visibility timeout {args.visibility_timeout:g} s; "
        f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
        f"on {os.cpu_count()} CPUs"
    )
    header = (
        "offered/s",
        "offered",
        "accepted",
        "processed",
        "lost",
        "dup",
        "redeliv",
        "p50 ms",
        "p99 ms",
        "max ms",
        "kill",
        "holds",
    )
    print("".join(f"{h:>10}" for h in header[:-2]) + f"  {'kill':<12}{'holds':>6}")
    for step in steps:
        cells = (
            f"{step.rate:g}",
            len(step.deliveries),
            len(step.accepted),
            step.processed,
            len(step.lost),
            len(step.duplicated),
            step.redelivered,
            f"{step.quantile(0.5) * 1000:.0f}",
            f"{step.quantile(0.99) * 1000:.0f}",
            f"{step.quantile(1.0) * 1000:.0f}",
        )
        caught = "mid-run" if "while running" in step.fault else "idle"
        print("".join(f"{c:>10}" for c in cells) + f"  {caught:<12}{'yes' if step.holds else 'no':>6}")
    for step in steps:
        shares = ", ".join(
            f"{role} {seconds / len(step.deliveries) * 1000:.1f}" for role, seconds in sorted(step.cpu.items())
        )
        total = sum(step.cpu.values()) / len(step.deliveries) * 1000
        print(f"at {step.rate:g}/s: CPU per delivery {total:.1f} ms ({shares}); worker 1 {step.fault}")
        print(f"    {step.p99_by_workers()}")
    held = [step.rate for step in steps if step.holds]
    if held:
        best = max(held)
        print(
            f"sustained: {best:g} deliveries/s with p99 <= {P99_LIMIT:g} s and none lost or duplicated "
            f"({best / args.workers:g}/s per worker)"
        )
    else:
        print(
            f"sustained: no rate tried held (p99 <= {P99_LIMIT:g} s, every delivery accepted, none lost or duplicated)"
        )
    for step in steps:
        for kind, wrong in (("lost", step.lost), ("duplicated", step.duplicated)):
            for delivery in wrong[:10]:
                state = step.inbox.get(delivery.delivery_id)
                print(
                    f"  {kind} at {step.rate:g}/s: delivery {delivery.delivery_id}, "
                    f"issue #{delivery.number}, inbox {state}"
                )


def rates_to_try(args: argparse.Namespace, steps: list[Step]) -> float | None:
    """The next rate: the next of the rates given, or of the search; None when done."""
    if args.rates:
        return args.rates[len(steps)] if len(steps) < len(args.rates) else None
    if len(steps) >= args.max_steps:
        return None
    held = [step.rate for step in steps if step.holds]
    failed = [step.rate for step in steps if not step.holds]
    if not steps:
        return args.start_rate
    if not failed:
        return min(steps[-1].rate * 2, MAX_RATE)
    low, high = max(held, default=0.0), min(failed)
    refinements = len(steps) - 1 - next(i for i, step in enumerate(steps) if not step.holds)
    if not held or refinements >= args.refine:
        return None
    middle = round(math.sqrt(low * high), 1)
    return None if middle in (low, high) else middle


async def drive(args: argparse.Namespace) -> int:
    from redis import Redis

    from agents.store.db import Store
    from bot import logging as waooaw_logging

    waooaw_logging.configure("WARNING")
    tag = uuid.uuid4().hex[:10]
    stream = f"waooaw:bench:load:{tag}"
    log_dir = Path(tempfile.mkdtemp(prefix=f"waooaw-bench-load-{tag}-"))
    fake: Server | None = None
    fleet: Fleet | None = None
    github: GitHubRecord | None = None
    steps: list[Step] = []
    with fresh_schema(args.pg_url, "bench_load") as database_url:
        try:
            store = Store(database_url)
            store.upgrade()
            store.dispose()
            fake = spawn_server("fake-github", ROOT / "bench" / "timed_github.py", ["github"], log_dir)
            await wait_ready(fake)
            env = product_env(database_url, args.redis_url, stream, fake.url, args.visibility_timeout)
            fleet = Fleet(env, log_dir, args.workers, database_url, args.redis_url, stream)
            fleet.fake_pid = fake.process.pid
            await fleet.start()
            github = GitHubRecord(fake.port)
            deliveries = Deliveries(args.installations)
            if args.warmup:  # connections, pools, installation tokens; not counted
                warm = await run_step(fleet, github, deliveries, 5.0, args.warmup, args, fault=False)
                print(f"warm-up: {describe(warm)}", file=sys.stderr)
            while (rate := rates_to_try(args, steps)) is not None:
                step = await run_step(fleet, github, deliveries, rate, args.n, args)
                steps.append(step)
                print(describe(step), file=sys.stderr)
        finally:
            if github is not None:
                await github.close()
            if fleet is not None:
                await fleet.stop()
            if fake is not None:
                fake.stop()
            client = Redis.from_url(args.redis_url)
            client.delete(stream, f"{stream}:dead", f"{stream}:errors")
            client.close()
    if steps:
        print_table(steps, args)
    failed = any(step.lost or step.duplicated or not step.settled for step in steps)
    if failed or args.keep_logs:
        print(f"logs of the processes kept in {log_dir}", file=sys.stderr)
    else:
        shutil.rmtree(log_dir, ignore_errors=True)
    return 1 if failed else 0


def positive(kind, upper):  # type: ignore[no-untyped-def]
    def parse(text: str):  # type: ignore[no-untyped-def]
        value = kind(text)
        if not 0 < value <= upper:
            raise argparse.ArgumentTypeError(f"must be > 0 and <= {upper}")
        return value

    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/load.py",
        description="End to end under load with a worker killed midway: offered, accepted, processed, lost, "
        "duplicated, p50/p99 from delivery to the last GitHub call, and the highest rate with p99 <= 1 s.",
    )
    parser.add_argument("--n", type=positive(int, MAX_N), default=1000, help="deliveries per step (default 1000)")
    parser.add_argument(
        "--rate",
        type=positive(float, MAX_RATE),
        action="append",
        dest="rates",
        default=None,
        help="a step at this offered rate; repeat it for several (default: search)",
    )
    parser.add_argument(
        "--start-rate",
        type=positive(float, MAX_RATE),
        default=10.0,
        help="the search's first rate, doubled while it holds (default 10)",
    )
    parser.add_argument("--max-steps", type=positive(int, 100), default=8, help="most steps of the search (default 8)")
    parser.add_argument(
        "--refine", type=int, default=2, help="steps narrowing the search after the first rate that fails (default 2)"
    )
    parser.add_argument(
        "--installations",
        type=positive(int, 100_000),
        default=100,
        help="installations the deliveries come from in turn: GitHub allows each 80 content-creating "
        "calls a minute and 500 an hour, two a delivery here (default 100)",
    )
    parser.add_argument("--workers", type=positive(int, 16), default=2, help="`waooaw worker` processes (default 2)")
    parser.add_argument(
        "--connections", type=positive(int, 1024), default=32, help="most deliveries in flight to the app (default 32)"
    )
    parser.add_argument(
        "--visibility-timeout",
        type=positive(float, 600),
        default=5.0,
        help="WAOOAW_BUS_VISIBILITY_TIMEOUT: how long the killed worker's entries wait (default 5)",
    )
    parser.add_argument("--warmup", type=int, default=10, help="deliveries before measuring, not counted (default 10)")
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the processes' logs (kept anyway when a step fails)"
    )
    parser.add_argument("--quick", action="store_true", help="a short run: 40 deliveries at 5/s, then at 10/s")
    add_service_options(parser)
    args = parser.parse_args(argv)
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
    return args


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(drive(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
