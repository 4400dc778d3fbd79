#!/usr/bin/env python
"""End to end under load, with a fault: deliveries in, comments out, one worker killed midway.

Everything runs as in production, each in a process of its own: `waooaw serve` (uvicorn,
intake only), `waooaw worker` × --workers consuming a Redis stream, PostgreSQL (a fresh
schema, migrated, dropped afterwards), and the fake GitHub (tests/fakes/github.py, served
by this file with `--serve github`) that the workers reach through githubkit with App auth.

Each delivery is the real `issue_comment.created` payload with the comment `/waooaw help`
on an issue of its own (and a comment id of its own), signed with HMAC-SHA256, sent at a
fixed offered rate (open loop: the schedule does not wait for answers). Its outputs are the
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
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    TRANSPORT_ERRORS, Connection, Server, find_payload, free_port, percentile, schema_url, send_time, spawn_server,
    wait_ready,
)

PAYLOAD = "issue_comment/created.with-installation.payload.json"
DEFAULT_PG_URL = os.environ.get("WAOOAW_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DEFAULT_REDIS_URL = os.environ.get("WAOOAW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET = "bench-load-webhook-secret"
APP_ID = 4242
WEBHOOK_PATH = "/webhooks/github"
STATE_PATH = "/_bench/state"  # the fake GitHub's record, for this bench only
HELP_MARKER = "<!-- waooaw:concierge:comment:help:{number} -->"
COMMENT_ID_BASE = 900_000_000  # the users' comments: far above the ids the fake gives its own objects
P99_LIMIT = 1.0  # seconds: a step holds when its p99 is within it
KILL_WAIT = 2.0  # seconds the fault waits for worker 1 to be running an agent before killing it anyway
CONSUMING_WAIT = 90.0  # seconds a started worker may take to join the consumer group
MAX_RATE = 5_000.0
MAX_N = 1_000_000
QUICK = {"n": 40, "rates": [5.0, 10.0], "warmup": 5}


# --------------------------------------------------------------------------- the fake GitHub's process


def serve_fake_github(port: int) -> None:
    """tests/fakes/github.py on `port`, noting when it answered each call (read at STATE_PATH)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from tests.fakes.github import FakeGitHub

    class TimedFakeGitHub(FakeGitHub):
        def __init__(self) -> None:
            super().__init__()
            self.answered: list[tuple[float, str, str, int]] = []  # (perf_counter, method, path, status)

        async def _endpoint(self, request: Request) -> Response:
            path = "/" + request.path_params["path"]
            if path == "/healthz":
                return JSONResponse({"status": "ok"})
            if path == STATE_PATH:
                query = request.query_params
                return JSONResponse(self.record(int(query.get("calls", 0)), int(query.get("comments", 0))))
            response = await super()._endpoint(request)
            # perf_counter is CLOCK_MONOTONIC here: one clock for every process of the machine.
            self.answered.append((time.perf_counter(), request.method, path, response.status_code))
            return response

        def record(self, calls_from: int, comments_from: int) -> dict[str, list[list[object]]]:
            comments = list(self.comments.values())[comments_from:]
            return {
                "calls": [list(call) for call in self.answered[calls_from:]],
                "comments": [[c["id"], int(c["issue_url"].rsplit("/", 1)[1]), c["body"][-120:]] for c in comments],
            }

    fake = TimedFakeGitHub()
    fake.url = f"http://127.0.0.1:{port}"  # the fake builds its objects' URLs from it
    app = Starlette(routes=[Route("/{path:path}", fake._endpoint, methods=["GET", "POST", "PATCH", "PUT", "DELETE"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


class GitHubRecord:
    """What the fake GitHub did, per delivery (known by its issue number), read incrementally."""

    def __init__(self, port: int) -> None:
        self.connection = Connection("127.0.0.1", port)
        self.calls_seen = self.comments_seen = 0
        self.last_call: dict[int, float] = {}  # issue number → when GitHub answered its last call
        self.help_comments: Counter[int] = Counter()  # issue number → comments carrying its marker
        self.reactions: Counter[int] = Counter()  # issue number → reactions created or found on its comment
        self.comment_issue: dict[int, int] = {}  # our comment's id → its issue number

    async def update(self) -> None:
        query = f"{STATE_PATH}?calls={self.calls_seen}&comments={self.comments_seen}"
        status, payload = await self.connection.request("GET", query, {})
        if status != 200:
            raise SystemExit(f"the fake GitHub answered {status} to {query}")
        record = json.loads(payload)
        for comment_id, number, tail in record["comments"]:
            self.comment_issue[comment_id] = number
            if HELP_MARKER.format(number=number) in tail:
                self.help_comments[number] += 1
        for at, method, path, status in record["calls"]:
            number = self._number(method, path, status)
            if number is not None:
                self.last_call[number] = max(at, self.last_call.get(number, 0.0))
        self.calls_seen += len(record["calls"])
        self.comments_seen += len(record["comments"])

    def _number(self, method: str, path: str, status: int) -> int | None:
        """The issue number of the delivery a call served: its issue, its comment or our comment on it."""
        parts = path.strip("/").split("/")  # repos/OWNER/NAME/issues/...
        if len(parts) < 6 or parts[3] != "issues":
            return None
        if parts[4] == "comments":
            comment_id = int(parts[5])
            if len(parts) == 7 and parts[6] == "reactions":
                number = comment_id - COMMENT_ID_BASE
                if method == "POST" and status in (200, 201):
                    self.reactions[number] += 1
                return number
            return self.comment_issue.get(comment_id)
        return int(parts[4]) if parts[4].isdigit() else None

    async def close(self) -> None:
        await self.connection.close()


# --------------------------------------------------------------------------- the processes under test


def product_env(database_url: str, redis_url: str, stream: str, github_url: str, visibility_timeout: float) -> dict[str, str]:
    """`waooaw serve` and `waooaw worker`'s environment: App auth against the fake GitHub, none of the caller's settings."""
    from tests.fakes.github import app_private_key

    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "ANTHROPIC_", "WAOOAW_"))}
    env.update(
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
        GITHUB_WEBHOOK_SECRET=SECRET,
        GITHUB_APP_ID=str(APP_ID),
        GITHUB_APP_PRIVATE_KEY=app_private_key(),
        GITHUB_API_URL=github_url,
        WAOOAW_DATABASE_URL=database_url,
        WAOOAW_REDIS_URL=redis_url,
        WAOOAW_BUS_STREAM=stream,
        WAOOAW_BUS_VISIBILITY_TIMEOUT=f"{visibility_timeout:g}",
        WAOOAW_LOG_LEVEL="INFO",  # the default, as in production
    )
    return env


def cpu_seconds(pid: int) -> float:
    """User and system CPU a process has used so far (Linux /proc); 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU the processes under test spend over a step, by role: the machine is shared, CPU is not."""

    def __init__(self) -> None:
        self.roles: dict[int, str] = {}
        self.base: dict[int, float] = {}
        self.spent: Counter[str] = Counter()

    def start(self, roles: dict[int, str]) -> None:
        self.roles, self.spent = dict(roles), Counter()
        self.base = {pid: cpu_seconds(pid) for pid in roles}

    def joined(self, pid: int, role: str) -> None:
        """A process started during the step: all its CPU counts, its start-up included."""
        self.roles[pid], self.base[pid] = role, 0.0

    def leaving(self, pid: int) -> None:
        """Read a process about to be killed."""
        self.spent[self.roles.pop(pid)] += cpu_seconds(pid) - self.base.pop(pid)

    def finish(self) -> Counter[str]:
        for pid in list(self.roles):
            self.leaving(pid)
        return self.spent


def waooaw(arguments: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """A `waooaw` command in the log's directory (so no `.env` of a checkout is read)."""
    with open(log_path, "ab") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "bot.cli", *arguments], cwd=log_path.parent, env=env,
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
        )


class Fleet:
    """The app, the workers, and the fault: worker 1 killed with SIGKILL and replaced."""

    def __init__(self, env: dict[str, str], log_dir: Path, workers: int, database_url: str, redis_url: str, stream: str) -> None:
        from redis.asyncio import Redis
        from sqlalchemy import create_engine

        self.env, self.log_dir, self.stream = env, log_dir, stream
        self.engine = create_engine(database_url, pool_size=2)
        self.redis = Redis.from_url(redis_url, decode_responses=True)
        self.app: Server | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.started = 0
        self.count = workers
        self.cpu = CpuMeter()
        self.fake_pid = 0

    async def start(self) -> None:
        port = free_port()
        log = self.log_dir / "serve.log"
        self.app = Server("serve", port, waooaw(["serve", "--port", str(port)], self.env, log), log)
        self.workers = [self._spawn_worker() for _ in range(self.count)]
        await wait_ready(self.app)
        for number, worker in enumerate(self.workers, start=1):
            await self.wait_consuming(worker, self._log(number))

    def _log(self, number: int) -> Path:
        return self.log_dir / f"worker-{number}.log"

    def _spawn_worker(self) -> subprocess.Popen[bytes]:
        self.started += 1
        return waooaw(["worker"], self.env, self._log(self.started))

    async def wait_consuming(self, worker: subprocess.Popen[bytes], log_path: Path) -> None:
        """Bounded wait for a worker's consumers to start (its start-up imports take seconds).

        Redis 7.0 lists a consumer in its group only once it was handed an entry, so the
        worker's own log line says when it reads the stream.
        """
        deadline = time.monotonic() + CONSUMING_WAIT
        while time.monotonic() < deadline:
            if worker.poll() is not None:
                raise SystemExit(f"a worker exited ({worker.returncode}):\n{log_path.read_text()[-3000:]}")
            if b'"bus.consumer_started"' in log_path.read_bytes():
                return
            await asyncio.sleep(0.2)  # bounded start-up wait, not a poll for work
        raise SystemExit(f"worker {worker.pid} did not consume within {CONSUMING_WAIT:g} s; logs in {self.log_dir}")

    async def fault(self) -> str:
        """SIGKILL worker 1, once it runs an agent (within KILL_WAIT), and start another: what it caught."""
        from sqlalchemy import func, select

        from agents.store.tables import AgentRun

        victim = self.workers[0]
        name = f"{socket.gethostname()}-{victim.pid}"  # bot.worker.Worker's name for itself
        query = select(func.count()).select_from(AgentRun).where(AgentRun.worker == name, AgentRun.status == "running")

        def running() -> int:
            with self.engine.connect() as connection:
                return int(connection.execute(query).scalar_one())

        deadline = time.perf_counter() + KILL_WAIT
        busy = 0
        while not busy and time.perf_counter() < deadline:
            busy = await asyncio.to_thread(running)
        self.cpu.leaving(victim.pid)
        victim.send_signal(signal.SIGKILL)
        await asyncio.to_thread(victim.wait)
        self.workers[0] = self._spawn_worker()
        self.cpu.joined(self.workers[0].pid, "workers")
        return f"killed while running {busy} agent run(s)" if busy else f"killed idle (no run within {KILL_WAIT:g} s)"

    def measure(self) -> None:
        assert self.app is not None
        roles = {self.app.process.pid: "serve", self.fake_pid: "fake GitHub"}
        self.cpu.start(roles | {worker.pid: "workers" for worker in self.workers})

    async def depth(self) -> int:
        """Entries on the stream: handled ones are deleted with their ack, so 0 means none waits or runs."""
        return int(await self.redis.xlen(self.stream))

    def inbox(self, ids: list[str]) -> dict[str, tuple[str, int]]:
        """delivery id → (status, attempts)."""
        from sqlalchemy import select

        from agents.store.tables import InboxRecord

        found: dict[str, tuple[str, int]] = {}
        with self.engine.connect() as connection:
            for start in range(0, len(ids), 1000):
                rows = connection.execute(
                    select(InboxRecord.delivery_id, InboxRecord.status, InboxRecord.attempts)
                    .where(InboxRecord.delivery_id.in_(ids[start:start + 1000]))
                )
                found.update({delivery_id: (status, attempts) for delivery_id, status, attempts in rows})
        return found

    async def stop(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)  # `waooaw worker` stops cleanly on it
        for worker in self.workers:
            try:
                await asyncio.to_thread(worker.wait, 15)
            except subprocess.TimeoutExpired:
                worker.kill()
        if self.app is not None:
            self.app.stop()
        await self.redis.aclose()
        self.engine.dispose()


# --------------------------------------------------------------------------- the load


@dataclass
class Delivery:
    delivery_id: str
    number: int  # its issue: what every output of it is found by
    body: bytes
    headers: dict[str, str]
    sent: float = 0.0  # perf_counter its latency counts from
    answer: str = ""  # intake's answer: its body's status, or the HTTP status or error


class Deliveries:
    """Signed `/waooaw help` comments, each on an issue of its own."""

    def __init__(self) -> None:
        self.payload = json.loads(find_payload(PAYLOAD).read_bytes())
        self.payload["comment"]["body"] = "/waooaw help"
        self.next_number = 1

    def make(self, count: int) -> list[Delivery]:
        from bot.webhooks import sign

        made = []
        for number in range(self.next_number, self.next_number + count):
            self.payload["issue"]["number"] = number
            self.payload["comment"]["id"] = COMMENT_ID_BASE + number
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

    @property
    def holds(self) -> bool:
        return (len(self.accepted) == len(self.deliveries) and not self.lost and not self.duplicated
                and self.quantile(0.99) <= P99_LIMIT)


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
        step.latencies.append(github.last_call[delivery.number] - delivery.sent)
    step.latencies.sort()


async def run_step(fleet: Fleet, github: GitHubRecord, deliveries: Deliveries, rate: float, count: int,
                   args: argparse.Namespace, fault: bool = True) -> Step:
    step = Step(rate, deliveries.make(count))
    assert fleet.app is not None
    fleet.measure()
    await offer(fleet.app.port, step, args.connections, fleet if fault else None)
    await settle(fleet, step, args.visibility_timeout * 3 + 60)
    step.cpu = fleet.cpu.finish()
    await github.update()
    judge(step, github)
    return step


# --------------------------------------------------------------------------- the figures


def describe(step: Step) -> str:
    answers = Counter(d.answer for d in step.deliveries)
    verdict = "holds" if step.holds else "does not hold"
    return (
        f"{step.rate:g}/s: offered {len(step.deliveries)} in {step.offered_seconds:.1f} s, accepted {len(step.accepted)}, "
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
        f"visibility timeout {args.visibility_timeout:g} s; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
        f"on {os.cpu_count()} CPUs"
    )
    header = ("offered/s", "offered", "accepted", "processed", "lost", "dup", "redeliv", "p50 ms", "p99 ms", "max ms", "kill", "holds")
    print("".join(f"{h:>10}" for h in header[:-2]) + f"  {'kill':<12}{'holds':>6}")
    for step in steps:
        cells = (
            f"{step.rate:g}", len(step.deliveries), len(step.accepted), step.processed, len(step.lost),
            len(step.duplicated), step.redelivered, f"{step.quantile(0.5) * 1000:.0f}",
            f"{step.quantile(0.99) * 1000:.0f}", f"{step.quantile(1.0) * 1000:.0f}",
        )
        caught = "mid-run" if "while running" in step.fault else "idle"
        print("".join(f"{c:>10}" for c in cells) + f"  {caught:<12}{'yes' if step.holds else 'no':>6}")
    for step in steps:
        shares = ", ".join(f"{role} {seconds / len(step.deliveries) * 1000:.1f}" for role, seconds in sorted(step.cpu.items()))
        total = sum(step.cpu.values()) / len(step.deliveries) * 1000
        print(f"CPU per delivery at {step.rate:g}/s: {total:.1f} ms ({shares}; the restarted worker's start-up included)")
    held = [step.rate for step in steps if step.holds]
    if held:
        best = max(held)
        print(f"sustained: {best:g} deliveries/s with p99 <= {P99_LIMIT:g} s and none lost or duplicated "
              f"({best / args.workers:g}/s per worker)")
    else:
        print(f"sustained: no rate tried held (p99 <= {P99_LIMIT:g} s, every delivery accepted, none lost or duplicated)")
    for step in steps:
        for kind, wrong in (("lost", step.lost), ("duplicated", step.duplicated)):
            for delivery in wrong[:10]:
                state = step.inbox.get(delivery.delivery_id)
                print(f"  {kind} at {step.rate:g}/s: delivery {delivery.delivery_id}, issue #{delivery.number}, inbox {state}")


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
    from sqlalchemy import create_engine, text

    from agents.store.db import Store
    from bot import logging as waooaw_logging

    waooaw_logging.configure("WARNING")
    tag = uuid.uuid4().hex[:10]
    schema, stream = f"bench_load_{tag}", f"waooaw:bench:load:{tag}"
    database_url = schema_url(args.pg_url, schema)
    log_dir = Path(tempfile.mkdtemp(prefix=f"waooaw-bench-load-{tag}-"))
    admin = create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
    fake: Server | None = None
    fleet: Fleet | None = None
    github: GitHubRecord | None = None
    steps: list[Step] = []
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        store = Store(database_url)
        store.upgrade()
        store.dispose()
        fake = spawn_server("fake-github", Path(__file__).resolve(), ["github"], log_dir)
        await wait_ready(fake)
        env = product_env(database_url, args.redis_url, stream, fake.url, args.visibility_timeout)
        fleet = Fleet(env, log_dir, args.workers, database_url, args.redis_url, stream)
        fleet.fake_pid = fake.process.pid
        await fleet.start()
        github = GitHubRecord(fake.port)
        deliveries = Deliveries()
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
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
    if steps:
        print_table(steps, args)
    failed = any(step.lost or step.duplicated or not step.settled for step in steps)
    if failed:
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
    parser.add_argument("--rate", type=positive(float, MAX_RATE), action="append", dest="rates", default=None,
                        help="a step at this offered rate; repeat it for several (default: search)")
    parser.add_argument("--start-rate", type=positive(float, MAX_RATE), default=10.0, help="the search's first rate, doubled while it holds (default 10)")
    parser.add_argument("--max-steps", type=positive(int, 100), default=8, help="most steps of the search (default 8)")
    parser.add_argument("--refine", type=int, default=2, help="steps narrowing the search after the first rate that fails (default 2)")
    parser.add_argument("--workers", type=positive(int, 16), default=2, help="`waooaw worker` processes (default 2)")
    parser.add_argument("--connections", type=positive(int, 1024), default=32, help="most deliveries in flight to the app (default 32)")
    parser.add_argument("--visibility-timeout", type=positive(float, 600), default=5.0,
                        help="WAOOAW_BUS_VISIBILITY_TIMEOUT: how long the killed worker's entries wait (default 5)")
    parser.add_argument("--warmup", type=int, default=10, help="deliveries before measuring, not counted (default 10)")
    parser.add_argument("--quick", action="store_true", help="a short run: 40 deliveries at 5/s, then at 10/s")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help=f"PostgreSQL; a fresh schema is created and dropped (default {DEFAULT_PG_URL})")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help=f"Redis; a unique stream is used and deleted (default {DEFAULT_REDIS_URL})")
    # Internal: the same file serves the fake GitHub.
    parser.add_argument("--serve", choices=("github",), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        serve_fake_github(args.port)
        return 0
    return asyncio.run(drive(args))


if __name__ == "__main__":
    sys.exit(main())
