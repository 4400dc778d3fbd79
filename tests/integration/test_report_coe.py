"""The daily report's CoE section, from WowDomain job records and steps written through the
real context client (SQLite and PostgreSQL): jobs by outcome, one row per job active at the end
of the day or finished that day, the day's spend from the steps committed that day, the
questions for humans asked that day, and that spend in the report's total LLM spend."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert

from agents.domain.job import Depth, Escalation, Job, job_id_for, new_job
from agents.reports import DailyReport, build_daily_report, render_charts, render_markdown
from agents.store.tables import Decision, Installation
from bot.app import create_app
from tests.conftest import TEST_SECRET
from tests.helpers import make_platform, make_settings
from tests.integration.report_seed import CoEWriter

DAY = date(2026, 3, 10)
NOW = datetime(2026, 3, 12, 9, 0, tzinfo=UTC)
TOKEN = "report-reader-token"
A, B, D, E, G, H = (job_id_for(name) for name in "abdegh")


def at(day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def job(job_id: str, domain: str, repo: str, depth: Depth = "standard", installation: int = 1) -> Job:
    return new_job(job_id=job_id, domain=domain, depth=depth, repo=repo, installation_id=installation)


def question(n: int, kind: str, status: str = "open", issue: int | None = None) -> Escalation:
    return Escalation.model_validate(
        {
            "n": n,
            "kind": kind,
            "step": "validation.gate",
            "question": f"question {n}?",
            "status": status,
            "issue_number": issue,
        }
    )


def seed_jobs(store) -> None:
    """Jobs around 2026-03-10 (UTC): done, parked across days, parked untouched, cancelled,
    finished earlier, started the next day, in another installation, with a step just after midnight."""
    with store.session() as session:
        session.execute(
            insert(Installation),
            [
                dict(id=1, account="octo", status="active", repos=["octo/alpha", "octo/beta"]),
                dict(id=2, account="other", status="active", repos=["other/gamma"]),
            ],
        )
        session.execute(
            insert(Decision),
            [
                dict(
                    agent="wowvision",
                    rule="r",
                    rung="llm",
                    outcome={},
                    latency_ms=1.0,
                    tokens_in=900,
                    tokens_out=90,
                    cost_usd=0.40,
                    repo="octo/alpha",
                    created_at=at(10, 12),
                )
            ],
        )
    w = CoEWriter(store)

    # A: started and done on the day, with its confidence step and a PR.
    a = w.save(job(A, "Digital Marketing", "octo/alpha"), at(10, 9))
    w.lock(a, at(10, 9))
    a = w.save(a, at(10, 9, 5), status="running")
    a = w.step(a, "intake.orchestrator", at(10, 9, 10), cost_usd=0.10, tokens_in=1000, tokens_out=200)
    a = w.step(a, "research.research", at(10, 10), cost_usd=0.20, tokens_in=2000, tokens_out=300, model_calls=2)
    a = w.step(
        a,
        "validation.confidence-analyzer",
        at(10, 11),
        cost_usd=0.05,
        tokens_in=500,
        tokens_out=100,
        deliverable={
            "skills": [
                {"skill_id": "s1", "confidence": 0.9},
                {"skill_id": "s2", "confidence": 0.6},
                {"skill_id": "s3", "confidence": 0.75},
            ]
        },
    )
    w.save(
        a, at(10, 12), status="done", finished_at=at(10, 12), pr_number=7, pr_url="https://github.com/octo/alpha/pull/7"
    )

    # B: parked two days before; answered at midnight, a step at the day's first instant, parked again on budget.
    b = w.save(job(B, "Tax Law", "octo/beta", "quick"), at(8, 10))
    b = w.step(b, "intake.orchestrator", at(8, 10, 5), cost_usd=0.08, tokens_in=800, tokens_out=80)
    b = w.save(b, at(8, 11), status="parked", escalations=[question(1, "confidence", issue=41)])
    b = w.save(b, at(10, 0), status="queued", escalations=[question(1, "confidence", "answered", 41)])
    b = w.step(b, "research.research", at(10, 0), cost_usd=0.12, tokens_in=1200, tokens_out=150)
    w.restore_step(b, "intake.orchestrator", at(10, 1))  # a new version of an old step: no new spend
    b = w.save(
        b,
        at(10, 2),
        status="parked",
        wasted_usd=0.03,
        escalations=[question(1, "confidence", "answered", 41), question(2, "budget", issue=42)],
    )
    w.save(
        b,
        at(11, 1),
        status="running",
        escalations=[question(1, "confidence", "answered", 41), question(2, "budget", "answered", 42)],
    )

    # C: done days before, untouched since: not listed.
    c = w.save(job(job_id_for("c"), "Old Domain", "octo/alpha"), at(6, 8))
    w.save(c, at(6, 9), status="done", finished_at=at(6, 9))
    # D: parked the day before and still waiting: listed, parked, nothing asked this day.
    d = w.save(job(D, "Waiting Domain", "octo/alpha"), at(9, 15))
    w.save(d, at(9, 16), status="parked", escalations=[question(1, "critique")])
    # E: started and cancelled on the day.
    e = w.save(job(E, "Cancelled Domain", "octo/beta"), at(10, 13))
    w.save(e, at(10, 14), status="cancelled")
    # F: starts at the next day's first instant: not this day's.
    w.save(job(job_id_for("f"), "Tomorrow", "octo/alpha"), at(11, 0))
    # H: running since the day before; its step is committed 03:00 UTC the next day (23:00 in New York).
    h = w.save(job(H, "Late Night", "octo/alpha", "deep"), at(9, 20), status="running")
    w.step(h, "intake.orchestrator", at(11, 3), cost_usd=0.06, tokens_in=600, tokens_out=60)

    # G: another installation's job, running on the day.
    g = CoEWriter(store, installation_id=2)
    gamma = g.save(job(G, "Gamma Domain", "other/gamma", installation=2), at(10, 5), status="running")
    g.step(gamma, "intake.orchestrator", at(10, 6), cost_usd=1.00, tokens_in=5000, tokens_out=500)


def test_the_coe_section_counts_and_lists_the_days_jobs(store):
    seed_jobs(store)
    report = build_daily_report(store, DAY, "UTC", budget_usd=1.0, installation_id=1, now=NOW)
    coe = report.coe

    assert [j.job for j in coe.jobs] == [B, D, H, A, E]  # by start; C finished earlier, F starts the next day
    assert (coe.jobs_total, coe.jobs_active, coe.jobs_started) == (5, 3, 2)
    assert (coe.jobs_done, coe.jobs_failed, coe.jobs_parked, coe.jobs_running) == (1, 1, 2, 1)

    rows = {j.job: j for j in coe.jobs}
    done = rows[A]
    assert (done.repo, done.domain, done.status, done.depth) == ("octo/alpha", "Digital Marketing", "done", "standard")
    assert (done.spent_usd, done.budget_usd) == (pytest.approx(0.35), 2.0)
    assert (done.model_calls, done.tokens_in, done.tokens_out, done.open_questions) == (4, 3500, 600, 0)
    assert done.mean_confidence == pytest.approx(0.75) and done.pr_url == "https://github.com/octo/alpha/pull/7"
    parked = rows[B]  # as the record stood at the end of the day, not as it stands now
    assert (parked.status, parked.spent_usd, parked.budget_usd) == ("parked", pytest.approx(0.23), 0.5)
    assert (parked.model_calls, parked.open_questions, parked.mean_confidence, parked.pr_url) == (2, 1, None, None)
    assert (rows[D].status, rows[D].open_questions) == ("parked", 1)
    assert rows[E].status == "cancelled" and rows[H].status == "running"

    # The day's spend: the steps committed that day — not B's restored old step, H's next-day step or G's.
    spend = coe.spend
    assert (spend.steps, spend.model_calls, spend.tokens_in, spend.tokens_out) == (4, 5, 4700, 750)
    assert spend.cost_usd == pytest.approx(0.47)
    assert [(q.job, q.n, q.kind, q.status, q.issue_number) for q in coe.escalations_opened] == [
        (B, 2, "budget", "open", 42)
    ]

    # CoE steps are ledger rows of their jobs: their spend is its own line of the total.
    h = report.headline
    assert (h.cost_usd, h.coe_cost_usd, h.total_cost_usd) == (
        pytest.approx(0.40),
        pytest.approx(0.47),
        pytest.approx(0.87),
    )
    series = {s.date: s for s in report.series}
    assert series[DAY].coe_cost_usd == pytest.approx(0.47)
    assert series[DAY - timedelta(days=2)].coe_cost_usd == pytest.approx(0.08)
    assert not report.empty


def test_an_operators_report_sees_every_installation_and_the_day_is_cut_in_its_time_zone(store):
    seed_jobs(store)
    everyone = build_daily_report(store, DAY, "UTC", now=NOW).coe
    assert G in [j.job for j in everyone.jobs] and everyone.jobs_total == 6
    assert (everyone.spend.steps, everyone.spend.cost_usd) == (5, pytest.approx(1.47))
    assert everyone.jobs_started == 3

    # New York (UTC-4 that day): 04:00 UTC to 04:00 UTC. B's midnight step falls on the 9th, H's on the 10th.
    new_york = build_daily_report(store, DAY, "America/New_York", installation_id=1, now=NOW).coe
    assert (new_york.spend.steps, new_york.spend.cost_usd) == (4, pytest.approx(0.41))


def test_the_markdown_and_the_json_carry_the_coe_section(pg_store):
    seed_jobs(pg_store)
    report = build_daily_report(pg_store, DAY, "UTC", budget_usd=1.0, installation_id=1, now=NOW)
    text = render_markdown(report)
    section = text.split("## CoE jobs", 1)[1].split("\n## ", 1)[0]
    assert (
        "- Jobs started: 2; done: 1; failed or cancelled: 1; parked, waiting for a human: 2; "
        "still queued or running: 1" in section
    )
    assert "- Spend on the 4 step(s) committed this day: $0.47, 5 model call(s), 4,700 / 750 tokens in / out" in section
    assert f"- Questions for humans asked this day: `{B}` #2 budget (open, octo/beta#42)" in section
    assert (
        f"| octo/alpha | Digital Marketing | `{A}` | done | standard | $0.35 / $2.00 | 4 | 3,500 / 600 | 0 "
        f"| 0.75 | [\\#\u200b7](https://github.com/octo/alpha/pull/7) |"
    ) in section
    assert f"| octo/beta | Tax Law | `{B}` | parked | quick | $0.23 / $0.50 | 2 | 2,000 / 230 | 1 | — | — |" in section
    assert "| LLM spend | $0.87 of $1.00 (87%) |" in text
    assert "| · agents (decision ledger) | $0.40 |" in text and "| · CoE jobs (steps committed) | $0.47 |" in text
    assert "| CoE jobs started / finished / questions for humans | 2 / 2 / 1 | |" in text
    assert all(png for png in render_charts(report).values())

    platform = make_platform(pg_store, settings=make_settings(WAOOAW_REPORTS_TOKEN=TOKEN, WAOOAW_REPORT_BUDGET_USD=1.0))
    client = TestClient(create_app(platform, secret=TEST_SECRET, run_worker=False))
    response = client.get(f"/api/v1/reports/daily/{DAY}", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    served = response.json()["coe"]
    assert served == build_daily_report(pg_store, DAY, "UTC").model_dump(mode="json")["coe"]
    assert served["spend"]["steps"] == 5 and served["jobs_total"] == 6  # the operator's token: every installation
    assert DailyReport.model_validate(response.json()).headline.coe_cost_usd == pytest.approx(1.47)
    page = client.get(f"/reports/daily/{DAY}", headers={"Authorization": f"Bearer {TOKEN}"})
    assert page.status_code == 200 and "<h2>CoE jobs</h2>" in page.text and "Digital Marketing" in page.text


def test_a_day_without_coe_jobs_says_so(store):
    seed_jobs(store)
    report = build_daily_report(store, date(2026, 3, 1), "UTC", installation_id=1, now=NOW)
    assert report.coe.jobs == [] and report.coe.spend.steps == 0 and report.headline.coe_cost_usd == 0
    section = render_markdown(report).split("## CoE jobs", 1)[1].split("\n## ", 1)[0]
    assert section.strip() == "No CoE jobs."
