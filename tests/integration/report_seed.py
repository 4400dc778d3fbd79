"""A seeded store for the report tests, and the report's figures computed from the seed in Python.

`seed()` writes a known, random-but-reproducible spread of activity around one day
(rows on the day's exact bounds and just outside them included) and returns the rows
it wrote. `expected()` computes what the report must say from those rows alone —
per-row time-zone conversion and plain counting, independent of the report's SQL.

`CoEWriter` writes WowDomain job records and their steps through the real context
client (DbContextClient), with their spend in the decision ledger as the runner records
it, and dates each version and ledger row at a chosen instant, for the report's CoE
section (tests/integration/test_report_coe.py).
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, update

from agents.context.client import DbContextClient
from agents.context.models import ContextVersion, Handoff
from agents.domain.job import AGENT as JOB_AGENT
from agents.domain.job import Job, lock_scope
from agents.ledger import Entry
from agents.store.db import Store
from agents.store.tables import AgentRun, AuditEntry, Decision, InboxRecord, Installation, PublishedOutput
from agents.tokens import Grant

AGENTS = ("wowvision", "concierge", "domain-onboarding")
KINDS = (("pull_request", "opened"), ("issue_comment", "created"), ("push", None), ("issues", "opened"))
RUNGS = ("deterministic", "deterministic", "cached", "llm", "skipped")
RULES = tuple(f"rule-{n}" for n in range(14))
REPOS = {1: ("octo/alpha", "octo/beta"), 2: ("other/gamma",)}


@dataclass
class Seeded:
    day: date
    zone: ZoneInfo
    inbox: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    versions: list[dict[str, Any]] = field(default_factory=list)
    handoffs: list[dict[str, Any]] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)

    def local(self, instant: datetime | None) -> date | None:
        return None if instant is None else instant.astimezone(self.zone).date()

    def on_day(self, instant: datetime | None) -> bool:
        return self.local(instant) == self.day


def _instants(day: date, zone: ZoneInfo, rng: random.Random, span: int = 16) -> list[datetime]:
    """Random instants from `span` days before to the day after, plus the day's exact edges."""
    start = datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone).astimezone(UTC)
    edges = [start, end, start - timedelta(microseconds=1), end - timedelta(microseconds=1)]
    return edges + [
        start - timedelta(days=span) + timedelta(seconds=rng.randrange((span + 2) * 86_400)) for _ in range(40)
    ]


def seed(store: Store, day: date, tz: str = "UTC", *, rng_seed: int = 5, scale: int = 6) -> Seeded:
    """Activity around `day`: `scale` × 44 deliveries (and their runs, decisions, outputs …)."""
    rng = random.Random(rng_seed)
    zone = ZoneInfo(tz)
    s = Seeded(day, zone)
    instants = [t for _ in range(scale) for t in _instants(day, zone, rng)]
    for n, at in enumerate(instants):
        installation = rng.choice((1, 1, 2))
        event, action = rng.choice(KINDS)
        status = rng.choice(("done", "done", "done", "ignored", "failed", "dead", "queued"))
        s.inbox.append(
            dict(
                delivery_id=f"d{n}",
                event=event,
                action=action,
                repo=rng.choice(REPOS[installation]),
                installation_id=installation,
                body=b"{}",
                status=status,
                attempts=rng.choice((1, 1, 2, 3)),
                received_at=at,
            )
        )
    for delivery in rng.choices(s.inbox, k=len(s.inbox) * 3 // 2):
        at = delivery["received_at"] + timedelta(seconds=rng.randrange(0, 3 * 3600))
        status = rng.choice(("ok", "ok", "ok", "error", "timeout", "abandoned", "running"))
        duration = None if status == "running" else round(rng.uniform(1, 5000), 3)
        errors = {
            "error": f"RuntimeError('boom {rng.randrange(3)}') <script>x</script>",
            "timeout": "no result within 10 s",
        }
        error = errors.get(status)
        s.runs.append(
            dict(
                delivery_id=delivery["delivery_id"],
                agent=rng.choice(AGENTS),
                attempt=1,
                worker="w",
                status=status,
                error=error,
                started_at=at,
                duration_ms=duration,
            )
        )
    for at in [t for _ in range(4) for t in instants]:
        rung = rng.choice(RUNGS)
        llm = rung == "llm"
        installation = rng.choice((1, 1, 2))
        s.decisions.append(
            dict(
                agent=rng.choice(AGENTS),
                rule=rng.choice(RULES),
                rung=rung,
                outcome={},
                latency_ms=rng.uniform(0, 20),
                tokens_in=rng.randrange(100, 3000) if llm else 0,
                tokens_out=rng.randrange(10, 400) if llm else 0,
                cost_usd=round(rng.uniform(0.001, 0.05), 6) if llm else 0.0,
                repo=rng.choice(REPOS[installation]),
                created_at=at,
            )
        )
    for n, at in enumerate(instants[::3]):
        installation = rng.choice((1, 1, 2))
        repo = rng.choice(REPOS[installation])
        updated = at + rng.choice((timedelta(0), timedelta(hours=rng.randrange(1, 40))))
        kind = rng.choice(("comment", "issue", "review", "check_run", "reaction"))
        url = None if kind == "reaction" else f"https://github.com/{repo}/issues/{n + 1}"
        s.outputs.append(
            dict(
                marker=f"<!-- waooaw:x:{kind}:{n} -->",
                agent=rng.choice(AGENTS),
                kind=kind,
                repo=repo,
                github_id=n,
                url=url,
                created_at=at,
                updated_at=updated,
            )
        )
    for n, at in enumerate(instants[::5]):
        job = f"job-{n % 7}" if n % 4 else None
        s.versions.append(
            dict(
                installation_id=rng.choice((1, 2)),
                repo="octo/alpha",
                agent="domain-onboarding",
                scope=f"scope-{n}",
                version=1,
                data={},
                summary="",
                tags=[],
                job_id=job,
                created_at=at,
            )
        )
        s.handoffs.append(
            dict(
                installation_id=rng.choice((1, 2)),
                repo="octo/alpha",
                scope=f"scope-{n}",
                from_agent="a",
                to_agent="b",
                package={},
                job_id=job,
                created_at=at,
                claimed_at=at + timedelta(hours=rng.randrange(0, 30)) if n % 2 else None,
            )
        )
        s.audit.append(
            dict(
                actor="t",
                action=rng.choice(("context.put", "token.create", "snapshot.restore")),
                target="x",
                details={},
                installation_id=rng.choice((1, 2)),
                at=at,
            )
        )
    with store.session() as session:
        session.execute(
            insert(Installation),
            [
                dict(id=1, account="octo", status="active", repos=list(REPOS[1])),
                dict(id=2, account="other", status="active", repos=list(REPOS[2])),
            ],
        )
        for model, rows in (
            (InboxRecord, s.inbox),
            (AgentRun, s.runs),
            (Decision, s.decisions),
            (PublishedOutput, s.outputs),
            (ContextVersion, s.versions),
            (Handoff, s.handoffs),
            (AuditEntry, s.audit),
        ):
            session.execute(insert(model), rows)
    return s


def nearest_rank(values: list[float], p: int) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[math.ceil(p / 100 * len(ordered)) - 1]


def expected(s: Seeded, installation_id: int | None = None) -> dict[str, Any]:
    """The report's figures, from the seeded rows alone."""
    mine_repos = None if installation_id is None else set(REPOS[installation_id])
    inbox = [r for r in s.inbox if installation_id is None or r["installation_id"] == installation_id]
    deliveries = {r["delivery_id"] for r in inbox}
    runs = [r for r in s.runs if r["delivery_id"] in deliveries]
    decisions = [r for r in s.decisions if mine_repos is None or r["repo"] in mine_repos]
    outputs = [r for r in s.outputs if mine_repos is None or r["repo"] in mine_repos]

    day_inbox = [r for r in inbox if s.on_day(r["received_at"])]
    day_runs = [r for r in runs if s.on_day(r["started_at"])]
    day_decisions = [r for r in decisions if s.on_day(r["created_at"])]
    agents: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"decisions": Counter(), "outputs": Counter(), "tokens_in": 0, "tokens_out": 0, "cost": 0.0}
    )
    for agent in {r["agent"] for r in day_runs}:
        mine = [r for r in day_runs if r["agent"] == agent]
        durations = [r["duration_ms"] for r in mine if r["duration_ms"] is not None]
        agents[agent].update(
            runs=len(mine),
            wakes=len({r["delivery_id"] for r in mine}),
            ok=sum(r["status"] == "ok" for r in mine),
            failures=sum(r["status"] in ("error", "timeout") for r in mine),
            abandoned=sum(r["status"] == "abandoned" for r in mine),
            running=sum(r["status"] == "running" for r in mine),
            p50=nearest_rank(durations, 50),
            p95=nearest_rank(durations, 95),
        )
    for r in day_decisions:
        a = agents[r["agent"]]
        a["decisions"][r["rung"]] += 1
        a["tokens_in"] += r["tokens_in"]
        a["tokens_out"] += r["tokens_out"]
        a["cost"] += r["cost_usd"]
    published = [r for r in outputs if s.on_day(r["created_at"])]
    for r in published:
        agents[r["agent"]]["outputs"][r["kind"]] += 1
    edited = [r for r in outputs if s.on_day(r["updated_at"]) and s.local(r["created_at"]) < s.day]

    series = {}
    for n in range(13, -1, -1):
        d = s.day - timedelta(days=n)
        series[d] = {
            "events": sum(s.local(r["received_at"]) == d for r in inbox),
            "runs": sum(s.local(r["started_at"]) == d for r in runs),
            "run_failures": sum(s.local(r["started_at"]) == d and r["status"] in ("error", "timeout") for r in runs),
            "outputs": sum(s.local(r["created_at"]) == d for r in outputs),
            "decisions": dict(Counter(r["rung"] for r in decisions if s.local(r["created_at"]) == d)),
            "cost": sum(r["cost_usd"] for r in decisions if s.local(r["created_at"]) == d),
        }

    wow_rules = Counter(r["rule"] for r in day_decisions if r["agent"] == "wowvision")
    handoffs = [h for h in s.handoffs if installation_id is None or h["installation_id"] == installation_id]
    audit = [a for a in s.audit if installation_id is None or a["installation_id"] == installation_id]
    errors = Counter(
        (r["agent"], r["status"], r["error"][:160]) for r in day_runs if r["status"] in ("error", "timeout")
    )
    firsts = [r["received_at"] for r in inbox] + [r["created_at"] for r in decisions]
    return {
        "events": len(day_inbox),
        "events_by_status": dict(Counter(r["status"] for r in day_inbox)),
        "retried": sum(r["status"] == "done" and r["attempts"] > 1 for r in day_inbox),
        "event_kinds": Counter(f"{r['event']}.{r['action']}" if r["action"] else r["event"] for r in day_inbox),
        "runs": len(day_runs),
        "run_failures": sum(r["status"] in ("error", "timeout") for r in day_runs),
        "timeouts": sum(r["status"] == "timeout" for r in day_runs),
        "abandoned": sum(r["status"] == "abandoned" for r in day_runs),
        "decisions": dict(Counter(r["rung"] for r in day_decisions)),
        "tokens_in": sum(r["tokens_in"] for r in day_decisions),
        "tokens_out": sum(r["tokens_out"] for r in day_decisions),
        "cost": sum(r["cost_usd"] for r in day_decisions),
        "agents": {name: dict(a) for name, a in agents.items()},
        "published": dict(Counter(r["kind"] for r in published)),
        "edited": dict(Counter(r["kind"] for r in edited)),
        "series": series,
        "wowvision_rules": wow_rules,
        "handoffs_created": sum(s.on_day(h["created_at"]) for h in handoffs),
        "handoffs_claimed": sum(s.on_day(h["claimed_at"]) for h in handoffs),
        "audit": dict(Counter(a["action"] for a in audit if s.on_day(a["at"]))),
        "errors": errors,
        "first_day": min(s.local(t) for t in firsts) if firsts else None,
        "links": sum(1 for r in outputs if r["url"] and (s.on_day(r["created_at"]) or s.on_day(r["updated_at"]))),
    }


class CoEWriter:
    """CoE job records and steps written as the runner writes them (DbContextClient, real Job
    models, ledger rows), each version and row then dated at the instant a test chooses."""

    def __init__(self, store: Store, installation_id: int = 1) -> None:
        self.store = store
        self.installation_id = installation_id
        self.client = DbContextClient(store, Grant(installation_id))
        self.versions: dict[tuple[str, str, str], int] = {}

    def _put(self, repo: str, agent: str, scope: str, data: dict[str, Any], at: datetime) -> int:
        key = (repo, agent, scope)
        version = self.client.put(repo, agent, scope, data, expected_version=self.versions.get(key))
        self.versions[key] = version
        with self.store.session() as session:
            session.execute(
                update(ContextVersion)
                .where(
                    ContextVersion.installation_id == self.installation_id,
                    ContextVersion.repo == repo,
                    ContextVersion.agent == agent,
                    ContextVersion.scope == scope,
                    ContextVersion.version == version,
                )
                .values(created_at=at)
            )
        return version

    def _record(self, job: Job, entry: Entry, at: datetime) -> None:
        self.client.record_decisions(job.repo, job.id, [entry])
        with self.store.session() as session:
            session.execute(
                update(Decision)
                .where(
                    Decision.installation_id == self.installation_id,
                    Decision.repo == job.repo,
                    Decision.job_id == job.id,
                    Decision.idempotency_key == entry.key,
                )
                .values(created_at=at)
            )

    def save(self, job: Job, at: datetime, **changes: Any) -> Job:
        """A new version of the job record with `changes`; a rise of its wasted spend is recorded in the ledger."""
        wasted = changes.get("wasted_usd", job.wasted_usd) - job.wasted_usd
        job = job.model_copy(update=changes)
        self._put(job.repo, JOB_AGENT, job.id, job.data(), at)
        if wasted > 0:
            self._record(
                job, Entry("research", "wasted", "llm", "error", key=f"wasted@{at.isoformat()}", cost_usd=wasted), at
            )
        return job

    def step(
        self,
        job: Job,
        key: str,
        at: datetime,
        *,
        cost_usd: float,
        tokens_in: int,
        tokens_out: int,
        model_calls: int = 1,
        agent: str | None = None,
        deliverable: dict[str, Any] | None = None,
    ) -> Job:
        """A committed step (its spend added to the job's totals, as the runner does; save the job to keep them)."""
        agent = agent or key.rsplit(".", 1)[-1]
        phase = key.split(".", 1)[0]
        data = {
            "step": key,
            "phase": phase,
            "input_hash": f"h-{key}",
            "reads": {},
            "package": {
                "deliverable": deliverable or {},
                "open_questions": [],
                "provenance": {"job": job.id, "agent": agent, "phase": phase, "step": key},
            },
            "spend": {
                "model": "claude-test",
                "cost_usd": cost_usd,
                "tokens_in": tokens_in,
                "tokens_out": tokens_out,
                "model_calls": model_calls,
                "latency_ms": 1.0,
            },
        }
        self._put(job.repo, agent, f"{job.id}:{key}", data, at)
        self._record(
            job,
            Entry(
                agent,
                key,
                "llm",
                "settled",
                key=key,
                input_hash=f"h-{key}",
                cost_usd=cost_usd,
                tokens_in=tokens_in,
                tokens_out=tokens_out,
                model_calls=model_calls,
            ),
            at,
        )
        totals = job.totals.model_copy(
            update={
                "cost_usd": job.totals.cost_usd + cost_usd,
                "tokens_in": job.totals.tokens_in + tokens_in,
                "tokens_out": job.totals.tokens_out + tokens_out,
                "model_calls": job.totals.model_calls + model_calls,
                "steps": job.totals.steps + 1,
            }
        )
        return job.model_copy(update={"totals": totals})

    def restore_step(self, job: Job, key: str, at: datetime) -> None:
        """A step written again with the same contents (what a snapshot restore does): a new version, no new spend."""
        agent = key.rsplit(".", 1)[-1]
        scope = f"{job.id}:{key}"
        current = self.client.get(job.repo, agent, scope)
        assert current is not None
        self._put(job.repo, agent, scope, current.data, at)

    def lock(self, job: Job, at: datetime) -> None:
        """The domain lock the command takes: agent wowdomain too, but not a job."""
        self._put(job.repo, JOB_AGENT, lock_scope(job.slug), {"job": job.id}, at)
