#!/usr/bin/env python
"""Daily report aggregation time on PostgreSQL: a day with 100,000 events and 1,000,000 ledger rows.

A fresh schema is migrated (Store.upgrade, so the report's indexes are there) and
loaded with COPY: --events inbox rows and as many agent runs (plus 5% retries), one
published output per 5 events, and --decisions decision-ledger rows, all spread over
the report's day. With --history-days N each of the N days before gets the same load
(the report's 14-day series and 7-day trend then read those days too). The table
statistics are refreshed (VACUUM ANALYZE, as autovacuum would after a load), then
`agents.reports.build_daily_report` runs --repeat times and the times are printed. Chart
rendering is timed apart: the target (≤ 2 s) counts the aggregation only.

    python bench/report.py                       # 100,000 events, 1,000,000 ledger rows
    python bench/report.py --history-days 13     # the same load on every day of the series
    WAOOAW_BENCH_PG_URL=postgresql+psycopg://... python bench/report.py

This is a benchmark that prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import text

from agents.reports import build_daily_report, render_charts
from agents.store.db import Store
from bench.common import DEFAULT_PG_URL, fresh_schema

PG_URL = os.environ.get("WAOOAW_BENCH_PG_URL", DEFAULT_PG_URL)
DAY = date(2026, 3, 10)
AGENTS = ("wowvision", "concierge", "domain-onboarding", "coe-architect", "reporter")
RULES = tuple(f"rule-{n:02d}" for n in range(40))
KINDS = (
    ("pull_request", "opened"),
    ("pull_request", "synchronize"),
    ("issue_comment", "created"),
    ("push", None),
    ("check_suite", "requested"),
    ("issues", "opened"),
)
REPOS = tuple(f"octo/repo-{n}" for n in range(50))


def _instant(rng: random.Random, day: date) -> datetime:
    start = datetime.combine(day, dtime.min, tzinfo=UTC)
    return start + timedelta(microseconds=rng.randrange(86_400_000_000))


def load(store: Store, days: list[date], events: int, decisions: int, seed: int = 7) -> dict[str, int]:
    rng = random.Random(seed)
    counts = dict.fromkeys(("inbox", "agent_runs", "published_outputs", "decisions"), 0)
    raw = store.engine.raw_connection()
    try:
        cursor = raw.cursor()
        for day in days:
            deliveries = [f"d-{day}-{n}" for n in range(events)]
            with cursor.copy(
                "COPY inbox (delivery_id, event, action, repo, installation_id, body, status, "
                "attempts, error, received_at, finished_at) FROM STDIN"
            ) as copy:
                for delivery in deliveries:
                    event, action = rng.choice(KINDS)
                    at = _instant(rng, day)
                    status = rng.choices(("done", "ignored", "dead", "failed"), (90, 8, 1, 1))[0]
                    copy.write_row(
                        (
                            delivery,
                            event,
                            action,
                            rng.choice(REPOS),
                            1,
                            b"{}",
                            status,
                            rng.choice((1, 1, 1, 2)),
                            None,
                            at,
                            at + timedelta(seconds=1),
                        )
                    )
            counts["inbox"] += events
            with cursor.copy(
                "COPY agent_runs (delivery_id, agent, attempt, worker, status, error, started_at, "
                "finished_at, duration_ms) FROM STDIN"
            ) as copy:
                for delivery in deliveries + rng.sample(deliveries, events // 20):
                    at = _instant(rng, day)
                    status = rng.choices(("ok", "error", "timeout", "abandoned"), (95, 3, 1, 1))[0]
                    copy.write_row(
                        (
                            delivery,
                            rng.choice(AGENTS),
                            1,
                            "bench",
                            status,
                            None if status == "ok" else "RuntimeError('bench')",
                            at,
                            at + timedelta(seconds=1),
                            rng.lognormvariate(5, 1),
                        )
                    )
                    counts["agent_runs"] += 1
            with cursor.copy(
                "COPY published_outputs (marker, agent, kind, repo, github_id, url, content_hash, "
                "delivery_id, created_at, updated_at) FROM STDIN"
            ) as copy:
                for n in range(events // 5):
                    at = _instant(rng, day)
                    repo = rng.choice(REPOS)
                    copy.write_row(
                        (
                            f"<!-- waooaw:bench:comment:{day}-{n} -->",
                            rng.choice(AGENTS),
                            rng.choice(("comment", "review", "check_run", "issue")),
                            repo,
                            n,
                            f"https://github.com/{repo}/issues/{n}",
                            None,
                            deliveries[n],
                            at,
                            at,
                        )
                    )
                    counts["published_outputs"] += 1
            with cursor.copy(
                "COPY decisions (agent, rule, rung, input_hash, outcome, latency_ms, tokens_in, "
                "tokens_out, cost_usd, repo, delivery_id, job_id, created_at) FROM STDIN"
            ) as copy:
                for _ in range(decisions):
                    rung = rng.choices(("deterministic", "cached", "llm"), (70, 22, 8))[0]
                    llm = rung == "llm"
                    copy.write_row(
                        (
                            rng.choice(AGENTS),
                            rng.choice(RULES),
                            rung,
                            None,
                            "{}",
                            rng.random() * 5,
                            rng.randrange(500, 4000) if llm else 0,
                            rng.randrange(50, 800) if llm else 0,
                            rng.random() / 50 if llm else 0.0,
                            rng.choice(REPOS),
                            None,
                            None,
                            _instant(rng, day),
                        )
                    )
            counts["decisions"] += decisions
        raw.commit()
    finally:
        raw.close()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--history-days", type=int, default=0, help="load the same on this many days before")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    with fresh_schema(PG_URL, "bench_report") as database_url:
        store = Store(database_url)
        try:
            store.upgrade()
            days = [DAY - timedelta(days=n) for n in range(args.history_days, -1, -1)]
            started = time.perf_counter()
            counts = load(store, days, args.events, args.decisions)
            loaded = time.perf_counter() - started
            with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.execute(text("VACUUM ANALYZE"))
            print(
                f"loaded {', '.join(f'{n:,} {t}' for t, n in counts.items())} over {len(days)} day(s) "
                f"in {loaded:.1f} s (COPY)"
            )

            times, report = [], None
            for _ in range(args.repeat):
                started = time.perf_counter()
                report = build_daily_report(store, DAY, "UTC", budget_usd=50.0)
                times.append(time.perf_counter() - started)
            assert report is not None
            h = report.headline
            print(
                f"report {DAY}: {h.events:,} events, {h.agent_runs:,} runs, {h.decisions_total:,} decisions, "
                f"{h.outputs_published:,} outputs, ${h.cost_usd:,.2f} LLM"
            )
            print(
                f"aggregation: first {times[0]:.3f} s, median {statistics.median(times):.3f} s, "
                f"best {min(times):.3f} s over {args.repeat} runs (target <= 2 s)"
            )
            started = time.perf_counter()
            render_charts(report)
            print(f"charts (not counted): {time.perf_counter() - started:.3f} s")
        finally:
            store.dispose()


if __name__ == "__main__":
    main()
