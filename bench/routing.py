#!/usr/bin/env python
"""Routing at catalogue scale: the time to pick the agents for an event, with 1,000 agents.

Registers the shipped catalogue plus --agents synthetic spec-like agents (each `hire_required`,
waking on one to three kinds drawn from the real payloads' kinds, a fifth of them as a glob
such as `issues.*`), hired across --repos repositories (each agent on 1–10 of them, some
paused on one), in a fresh store: PostgreSQL (a schema, dropped afterwards) and SQLite (a
temporary file). Then, for --events events built from the real payloads of
tests/fixtures/webhooks, each on a random repository, it times:

  pick      what the worker does once the delivery is loaded: bot.worker.Worker._agents_to_run
            (the routing index, the states on the repository, every agent's, read in one round
            trip, should_wake on the candidates that are hired and active), on a session
            whose connection is already checked out, as in Worker._plan;
  index     the routing index alone (Registry.candidates);
  loop      the loop it replaces: every agent active everywhere (one query), should_wake on each.

Then intake (bench/intake.py, the real app, --intake-seconds per run) with the shipped
catalogue and with the synthetic agents, to show what the larger static table costs intake.

    python bench/routing.py
    python bench/routing.py --db sqlite --no-intake

This is a benchmark that prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import select, text

from agents.base import WowAgent
from agents.events import Event
from agents.outputs import Output
from agents.registry import Lifecycle, Registry
from agents.store.db import Store
from bench.common import DEFAULT_PG_URL, DEFAULT_REDIS_URL, FIXTURE_DIRS, fresh_schema, percentile
from bot.wiring import freeze_startup_heap

TARGET_P99_MS = 1.0
COES = ("marketing", "sales", "support")


def real_kinds() -> dict[str, Path]:
    """Every event kind a real payload stands for (`issues.opened`, `push`), with one such payload."""
    kinds: dict[str, Path] = {}
    for base in FIXTURE_DIRS:
        for path in sorted(base.glob("*/*.payload.json")):
            payload = json.loads(path.read_text())
            action = payload.get("action") if isinstance(payload, dict) else None
            kind = f"{path.parent.name}.{action}" if isinstance(action, str) else path.parent.name
            kinds.setdefault(kind, path)
    return kinds


def synthetic_agents(count: int, seed: int = 16) -> list[type[WowAgent]]:
    """`count` spec-like agents: off until hired, waking on kinds of real payloads."""
    rng = random.Random(seed)
    kinds = sorted(real_kinds())
    agents: list[type[WowAgent]] = []
    for n in range(count):
        patterns: list[str] = []
        for kind in rng.sample(kinds, rng.randint(1, 3)):
            name = kind.split(".", 1)[0]
            patterns.append(f"{name}.*" if rng.random() < 0.2 and "." in kind else kind)

        async def execute(self: WowAgent, event: Event) -> list[Output]:
            return []

        agents.append(
            type(
                f"BenchSpecAgent{n}",
                (WowAgent,),
                {
                    "name": f"bench-{n:04d}",
                    "coe": COES[n % len(COES)],
                    "description": "bench/routing.py: a spec-like agent",
                    "hire_required": True,
                    "wakes_on": tuple(dict.fromkeys(patterns)),
                    "execute": execute,
                },
            )
        )
    return agents


def repos(count: int) -> list[str]:
    return [f"bench-org/repo-{n:03d}" for n in range(count)]


INSTALLATION = 4242


def hire(store: Store, agents: list[type[WowAgent]], repo_names: list[str], seed: int = 16) -> int:
    """Each agent hired on 1–10 repositories (through the config's path), one in ten paused on one."""
    from agents import hires

    rng = random.Random(seed)
    enabled: dict[str, list[str]] = {repo: [] for repo in repo_names}
    for agent in agents:
        for repo in rng.sample(repo_names, rng.randint(1, 10)):
            enabled[repo].append(agent.name)
    with store.session() as session:
        for repo, names in enabled.items():
            hires.apply_config(session, INSTALLATION, repo, names, [], {})
        for agent in agents[::10]:
            hires.set_state(session, INSTALLATION, rng.choice(repo_names), agent.name, Lifecycle.PAUSED)
    return sum(len(names) for names in enabled.values())


def events(count: int, repo_names: list[str], seed: int = 16) -> list[Event]:
    rng = random.Random(seed)
    payloads = {kind: json.loads(path.read_text()) for kind, path in real_kinds().items()}
    kinds = sorted(payloads)
    out = []
    for n in range(count):
        kind = rng.choice(kinds)
        payload = dict(payloads[kind])
        repository = dict(payload.get("repository") or {})
        repository["full_name"] = rng.choice(repo_names)
        payload.update(repository=repository, installation={"id": INSTALLATION})
        out.append(Event.from_payload(f"routing-{n}", kind.split(".", 1)[0], payload))
    return out


def measure(store: Store, registry: Registry, sample: list[Event]) -> dict[str, list[float]]:
    from bot.bus import LocalBus
    from bot.publish import DryRunPublisher
    from bot.settings import Settings
    from bot.worker import Worker

    worker = Worker(
        settings=Settings(),
        store=store,
        registry=registry,
        bus=LocalBus(),
        publisher=DryRunPublisher(io.StringIO()),
    )
    timings: dict[str, list[float]] = {"pick": [], "pick CPU": [], "index": [], "loop": []}
    picked = 0
    for event in sample:
        with store.reading() as session:
            session.execute(text("SELECT 1"))  # the connection Worker._plan has checked out already
            cpu, started = time.thread_time(), time.perf_counter()
            chosen = worker._agents_to_run(session, event, set()).agents
            timings["pick"].append(time.perf_counter() - started)
            timings["pick CPU"].append(time.thread_time() - cpu)
            picked += len(chosen)
        started = time.perf_counter()
        registry.candidates(event)
        timings["index"].append(time.perf_counter() - started)
        with store.reading() as session:
            session.execute(text("SELECT 1"))
            started = time.perf_counter()
            [agent for agent in registry.active(session) if agent(worker.env).should_wake(event)]
            timings["loop"].append(time.perf_counter() - started)
    timings["picked"] = [picked / len(sample)]
    return timings


def bench_store(label: str, store: Store, args: argparse.Namespace) -> dict[str, Any]:
    from agents.catalog import default_registry
    from agents.store.tables import AgentHire

    store.upgrade()
    registry = default_registry(store)
    agents = synthetic_agents(args.agents)
    for agent in agents:
        registry.register(agent)
    repo_names = repos(args.repos)
    hired = hire(store, agents, repo_names)
    with store.reading() as session:
        rows = len(session.scalars(select(AgentHire.id)).all())
    sample = events(args.events, repo_names)
    measure(store, registry, sample[: min(200, len(sample))])  # warm-up: pools, caches, the index
    freeze_startup_heap()  # as `waooaw worker` does once it is built
    timings = measure(store, registry, sample)
    table = []
    for _ in range(20):  # what intake rebuilds every few seconds (bot/wiring.py WAKE_TABLE_TTL), off its loop
        started = time.perf_counter()
        registry.wake_event_names()
        table.append(time.perf_counter() - started)
    timings["intake table"] = table
    return {"label": label, "agents": len(registry.names()), "hires": hired, "rows": rows, "timings": timings}


def report(result: dict[str, Any]) -> None:
    timings = result["timings"]
    load = "/".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        f"\n{result['label']} (load average {load}): {result['agents']} agents, "
        f"{result['hires']} hires in {result['rows']} rows, "
        f"{len(timings['pick'])} events, {timings['picked'][0]:.2f} agents woken per event"
    )
    for name, what in (
        ("pick", "pick (index + states + should_wake)"),
        ("pick CPU", "the same, this thread's CPU time"),
        ("index", "routing index alone"),
        ("loop", "loop over every agent (before)"),
        ("intake table", "intake's event names, rebuilt every 5 s"),
    ):
        ordered = sorted(timings[name])
        p50, p95, p99 = (percentile(ordered, q) * 1000 for q in (0.5, 0.95, 0.99))
        verdict = ""
        if name == "pick":
            verdict = "  ✓" if p99 <= TARGET_P99_MS else f"  ✗ (target p99 ≤ {TARGET_P99_MS:g} ms)"
        print(f"  {what:<40} p50 {p50:8.3f} ms   p95 {p95:8.3f} ms   p99 {p99:8.3f} ms{verdict}")


def run_intake(args: argparse.Namespace) -> None:
    """Intake's requests/s with the shipped catalogue and with the synthetic agents, alternated
    (A B A B…) so that a change in the machine's load falls on both."""
    from bench import intake

    rates: dict[int, list[float]] = {0: [], args.agents: []}
    for _ in range(args.intake_rounds):
        for count in (0, args.agents):
            runs: list[Any] = []
            intake_args = intake.parse_args(
                [
                    *("--only", "real", "--seconds", str(args.intake_seconds)),
                    *("--synthetic-agents", str(count), "--pg-url", args.pg_url, "--redis-url", args.redis_url),
                ]
            )
            asyncio.run(intake.drive(intake_args, collect=runs))
            rates[count].append(runs[0].rate() if runs else float("nan"))
    base, loaded = (sum(rates[count]) / len(rates[count]) for count in (0, args.agents))
    print(
        f"\nintake, 32 clients, {args.intake_rounds} × {args.intake_seconds:g} s each, alternated: "
        f"{base:.0f} requests/s with the shipped catalogue ({', '.join(f'{r:.0f}' for r in rates[0])}), "
        f"{loaded:.0f} with {args.agents} more agents ({', '.join(f'{r:.0f}' for r in rates[args.agents])}): "
        f"ratio {loaded / base:.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/routing.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=1000, help="synthetic agents (default 1000)")
    parser.add_argument("--repos", type=int, default=100, help="repositories they are hired on (default 100)")
    parser.add_argument("--events", type=int, default=5000, help="events routed (default 5000)")
    parser.add_argument("--db", choices=("pg", "sqlite", "both"), default="both")
    parser.add_argument("--intake-seconds", type=float, default=5.0, help="per intake run (default 5)")
    parser.add_argument("--intake-rounds", type=int, default=2, help="intake runs of each kind (default 2)")
    parser.add_argument("--no-intake", action="store_true", help="skip the intake runs")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    args = parser.parse_args(argv)
    from bot import logging as waooaw_logging

    waooaw_logging.configure("WARNING")
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="waooaw-bench-routing-") as directory:
            store = Store(f"sqlite:///{Path(directory) / 'routing.db'}")
            try:
                report(bench_store("SQLite", store, args))
            finally:
                store.dispose()
    if args.db in ("pg", "both"):
        with fresh_schema(args.pg_url, "bench_routing") as database_url:
            store = Store(database_url)
            try:
                report(bench_store("PostgreSQL", store, args))
            finally:
                store.dispose()
    if not args.no_intake:
        run_intake(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
