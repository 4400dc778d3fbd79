#!/usr/bin/env python
"""WowDomain CoE runner: orchestration overhead per step, and resume time, with an instant model.

The model is a stand-in for agents.llm.LLMClient that answers at once with the scripted
deliverable of the asking agent (tests/fakes/domain.py), a fixed token count and cost,
so what is measured is the runner's own work: the prompt, the checkpoint write (one
context version per step, with its handoff package), and the tracking-comment render
and publish (to a port that keeps the outputs in memory).

  step    wall time of each step (CoeRunner._call_and_commit) over --jobs full jobs, 14
          steps each (13 agents, the Orchestrator twice), after one warm-up job. Steps of
          a parallel group run together, so each one's time includes its siblings' share.
  job     wall time of a whole run (the steps, and at the end of each phase its steps' rows
          in the decision ledger and the job record's update), jobs/s.
  resume  a job whose every step but the last is committed: from `run()` to the model call
          of the missing step (loading the record, every committed step, recording them in
          the ledger again and reading the job's spend, walking the table), --resumes times,
          each with a fresh runner and client.

By default through DbContextClient on PostgreSQL (a fresh schema, dropped at the end) or
SQLite (`--db sqlite`); `--api` also through the Context API over HTTP (HttpContextClient,
a token per runner) against the real app in a uvicorn subprocess with Redis, as
bench/context.py starts it: the runner's path on GitHub Actions.

    python -m bench.coe
    python -m bench.coe --jobs 50 --api
    python -m bench.coe --db sqlite

This is a benchmark that prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from agents.context.client import ContextClient
from agents.domain.job import AGENT, job_id_for, new_job
from agents.domain.runner import CoeRunner
from agents.llm import Budget, LLMAnswer
from agents.outputs import Output
from agents.pricing import TokenUsage, cost
from bench.common import fresh_schema
from bench.context import DEFAULT_PG_URL, DEFAULT_REDIS_URL, clean_redis, make_tokens, start_server, wait_ready
from tests.fakes.domain import DomainScript

REPO = "bench-org/coe"
MODEL = "claude-sonnet-5-5"
USAGE = TokenUsage(input_tokens=1500, output_tokens=500)
LAST_AGENT = "learning-curator"  # the table's last step: a resumed job stops at its model call
STEP_TARGET_MS = 20.0
RESUME_TARGET_MS = 1000.0


class Stop(Exception):
    """Raised by the model where a resumed run would pay for its first new step."""


class InstantModel:
    """LLMClient's `ask`, answered at once from the script: no HTTP, no model in the figures."""

    configured = True

    def __init__(self, *, stop_at: str | None = None) -> None:
        self.model = MODEL
        self.stop_at = stop_at
        self.script = DomainScript()

    async def ask(self, system: str, prompt: str, schema: Any, *, max_tokens: int, budget: Budget) -> LLMAnswer[Any]:
        request = {
            "system": [{"text": system}],
            "tools": [{"name": f"record_{schema.__name__}"}],
            "messages": [{"role": "user", "content": prompt}],
        }
        if DomainScript.agent_of(request) == self.stop_at:
            raise Stop
        price = cost(MODEL, USAGE)
        budget.charge(price)
        return LLMAnswer(
            data=schema.model_validate(self.script(request)), model=MODEL, usage=USAGE, cost_usd=price, attempts=1
        )


class Outputs:
    """The publish port: keeps the tracking comments, the PR and any issue in memory."""

    def __init__(self) -> None:
        self.sent: list[Output] = []

    async def __call__(self, outputs: Sequence[Output]) -> list[None]:
        self.sent.extend(outputs)
        return [None for _ in outputs]


class TimedRunner(CoeRunner):
    """The runner, noting each step's wall time: with an instant model all of it is orchestration."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.step_seconds: list[float] = []

    async def _call_and_commit(self, *args: Any) -> Any:
        started = time.perf_counter()
        step = await super()._call_and_commit(*args)
        self.step_seconds.append(time.perf_counter() - started)
        return step


@dataclass
class Route:
    """One way the runner reaches the store (`connect`: a runner's own client) and what it measured."""

    name: str
    connect: Callable[[], ContextClient]
    steps: list[float] = field(default_factory=list)
    jobs: list[float] = field(default_factory=list)
    resumes: list[float] = field(default_factory=list)
    steps_per_job: int = 0


def quantile(samples: list[float], fraction: float) -> float:
    """Nearest rank, in ms."""
    ordered = sorted(samples)
    return (
        ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))] * 1000 if ordered else math.nan
    )


def create_job(client: ContextClient, seed: str, installation: int) -> str:
    """What the app does on `/waooaw domain …`: the job record, queued, with a tracking comment's issue."""
    job = new_job(
        job_id=job_id_for(seed),
        domain="Digital Marketing",
        depth="standard",
        repo=REPO,
        installation_id=installation,
        issue_number=5,
        requested_by="bench",
    )
    client.put(REPO, AGENT, job.id, job.data(), expected_version=None)
    return job.id


async def run_jobs(route: Route, count: int, tag: str, installation: int, outputs: Outputs) -> None:
    for n in range(count + 1):  # job 0 warms up (connections, statement caches) and is not counted
        client = route.connect()
        try:
            job_id = create_job(client, f"{tag}-{route.name}-job-{n}", installation)
            runner = TimedRunner(client, InstantModel(), job_id, REPO, publish=outputs)
            started = time.perf_counter()
            result = await runner.run()
            elapsed = time.perf_counter() - started
        finally:
            client.close()
        if result.status != "done":
            raise SystemExit(f"{route.name}: job {job_id} ended {result.status}: {result.message}")
        if n:
            route.jobs.append(elapsed)
            route.steps.extend(runner.step_seconds)
            route.steps_per_job = len(runner.step_seconds)
        print(f"{route.name} job {n}: {elapsed * 1000:.0f} ms, {len(runner.step_seconds)} steps", file=sys.stderr)


async def run_resumes(route: Route, count: int, tag: str, installation: int, outputs: Outputs) -> None:
    client = route.connect()
    try:
        job_id = create_job(client, f"{tag}-{route.name}-resume", installation)
        first = CoeRunner(client, InstantModel(stop_at=LAST_AGENT), job_id, REPO, publish=outputs)
        try:
            await first.run()
        except Stop:
            committed = len(first.steps)
        else:
            raise SystemExit(f"{route.name}: job {job_id} ran past its last step")
    finally:
        client.close()
    for _ in range(count):
        client = route.connect()
        runner = CoeRunner(client, InstantModel(stop_at=LAST_AGENT), job_id, REPO, publish=outputs)
        started = time.perf_counter()
        try:
            await runner.run()
        except Stop:
            route.resumes.append(time.perf_counter() - started)
        else:
            raise SystemExit(f"{route.name}: the resumed job {job_id} did not stop at its last step")
        finally:
            client.close()
        if len(runner.steps) != committed:
            raise SystemExit(
                f"{route.name}: the resumed run loaded {len(runner.steps)} steps, {committed} were committed"
            )
    print(
        f"{route.name} resume: {committed} steps committed, p50 {quantile(route.resumes, 0.5):.1f} ms", file=sys.stderr
    )


@contextmanager
def database(args: argparse.Namespace, tag: str) -> Iterator[str]:
    """A fresh, migrated database URL: a PostgreSQL schema or an SQLite file, removed afterwards."""
    from agents.store.db import Store

    with sqlite_file(tag) if args.db == "sqlite" else fresh_schema(args.pg_url, "bench_coe") as url:
        store = Store(url)
        store.upgrade()
        store.dispose()
        yield url


@contextmanager
def sqlite_file(tag: str) -> Iterator[str]:
    """An SQLite database in a folder of its own, as a URL; the folder is removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"waooaw-bench-coe-{tag}-", ignore_cleanup_errors=True) as folder:
        yield f"sqlite:///{Path(folder) / 'coe.db'}"


async def drive(args: argparse.Namespace) -> list[Route]:
    from agents.context.client import DbContextClient, HttpContextClient
    from agents.store.db import Store
    from agents.tokens import Grant
    from bot import logging as waooaw_logging

    waooaw_logging.configure("WARNING")
    tag = uuid.uuid4().hex[:10]
    installation = random.randrange(10**9, 10**12)
    outputs = Outputs()
    routes: list[Route] = []
    with database(args, tag) as url:
        store = Store(url)
        try:
            db = DbContextClient(store, Grant(installation))
            routes.append(Route("db", lambda: db))
            await run_jobs(routes[-1], args.jobs, tag, installation, outputs)
            await run_resumes(routes[-1], args.resumes, tag, installation, outputs)
        finally:
            store.dispose()
        if args.api:
            # A token per runner, as each Actions run exchanges its own: none meets the rate limit.
            tokens = make_tokens(url, installation, args.jobs + args.resumes + 2)
            unused = iter(tokens)
            log_dir = Path(tempfile.mkdtemp(prefix=f"waooaw-bench-coe-{tag}-"))
            server = start_server(url, args.redis_url, log_dir)
            try:
                await wait_ready(server)
                routes.append(Route("api", lambda: HttpContextClient(server.url, next(unused))))
                await run_jobs(routes[-1], args.jobs, tag, installation, outputs)
                await run_resumes(routes[-1], args.resumes, tag, installation, outputs)
            finally:
                server.stop()
                log = server.log_path.read_text().strip()
                if log:
                    print(f"\nserver log:\n{log[-2000:]}", file=sys.stderr)
                shutil.rmtree(log_dir, ignore_errors=True)
                try:
                    clean_redis(args.redis_url, installation, tokens)
                except Exception as exc:  # noqa: BLE001 - clean-up reports, it does not hide the result
                    print(f"warning: Redis keys not removed: {exc!r}", file=sys.stderr)
    print(f"published {len(outputs.sent)} outputs (tracking comments, PRs) to memory", file=sys.stderr)
    return routes


def verdict(figure: float, target: float) -> str:
    return "met" if figure <= target else "NOT met"


def print_table(routes: list[Route], args: argparse.Namespace) -> None:
    store = "SQLite" if args.db == "sqlite" else "PostgreSQL"
    print()
    print(
        f"coe bench: WowDomain runner, instant scripted model, {store}; {args.jobs} jobs after 1 warm-up, "
        f"{args.resumes} resumes"
    )
    print(f"{'route':<5} {'what':<7} {'samples':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for route in routes:
        for what, samples in (("step", route.steps), ("job", route.jobs), ("resume", route.resumes)):
            print(
                f"{route.name:<5} {what:<7} {len(samples):>8} {quantile(samples, 0.5):>8.2f} "
                f"{quantile(samples, 0.99):>8.2f} {quantile(samples, 1.0):>8.2f}"
            )
        print(
            f"{route.name:<5} {route.steps_per_job} steps per job, {len(route.jobs) / sum(route.jobs):.1f} jobs/s "
            f"(one runner, jobs one after another)"
        )
    print("targets:")
    for route in routes:
        p50, p99, resume = quantile(route.steps, 0.5), quantile(route.steps, 0.99), quantile(route.resumes, 0.99)
        print(
            f"  {route.name}: step overhead p50 {p50:.2f} ms, p99 {p99:.2f} ms (≤ {STEP_TARGET_MS:g} ms: "
            f"{verdict(max(p50, p99), STEP_TARGET_MS)}); resume p99 {resume:.1f} ms "
            f"(≤ {RESUME_TARGET_MS / 1000:g} s: {verdict(resume, RESUME_TARGET_MS)})"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.coe", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--jobs", type=int, default=20, help="full jobs per path (db, api), after one warm-up (default 20)"
    )
    parser.add_argument("--resumes", type=int, default=10, help="resumes of a job missing its last step (default 10)")
    parser.add_argument("--db", choices=("postgres", "sqlite"), default="postgres", help="the store (default postgres)")
    parser.add_argument("--api", action="store_true", help="also through the Context API over HTTP (needs Redis)")
    parser.add_argument(
        "--pg-url",
        default=DEFAULT_PG_URL,
        help=f"PostgreSQL; a fresh schema is created and dropped (default {DEFAULT_PG_URL})",
    )
    parser.add_argument(
        "--redis-url", default=DEFAULT_REDIS_URL, help=f"Redis, for --api (default {DEFAULT_REDIS_URL})"
    )
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.resumes < 1:
        parser.error("--jobs and --resumes take at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    from bot.wiring import freeze_startup_heap

    args = parse_args(argv)
    freeze_startup_heap()  # as `waooaw coe run` does before it runs a job
    routes = asyncio.run(drive(args))
    print_table(routes, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
