"""The daily report from a seeded store: its figures, charts, files, Markdown, and its GitHub issue.

The `store` fixture runs the figure tests on SQLite and on the real PostgreSQL (which
fails, never skips, when PostgreSQL is down); the expected figures are computed from
the seeded rows in Python (tests/integration/report_seed.py), not with the report's SQL.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from agents.reports import build_daily_report, render_charts, render_markdown
from agents.reports.markdown import image_links
from agents.store.tables import InboxRecord
from bot.cli import app as cli
from bot.daily_report import run_daily
from bot.settings import Settings
from tests.fakes.github import FakeGitHub
from tests.integration.report_seed import expected, seed

DAY = date(2026, 3, 10)
NOW = datetime(2026, 3, 12, 9, 0, tzinfo=UTC)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REPO = "octo/alpha"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("WAOOAW_", "GITHUB_")):
            monkeypatch.delenv(name)


def check_figures(report, want) -> None:
    h = report.headline
    assert h.events == want["events"]
    assert h.events_by_status == want["events_by_status"]
    assert h.agent_runs == want["runs"]
    assert h.decisions == want["decisions"]
    settled = sum(n for rung, n in want["decisions"].items() if rung != "skipped")
    assert h.without_llm_share == pytest.approx(1 - want["decisions"].get("llm", 0) / settled)
    assert (h.tokens_in, h.tokens_out) == (want["tokens_in"], want["tokens_out"])
    assert h.cost_usd == pytest.approx(want["cost"])
    assert h.outputs_published == sum(want["published"].values())
    assert h.outputs_edited == sum(want["edited"].values())
    assert {o.kind: o.published for o in report.outputs if o.published} == want["published"]
    assert {o.kind: o.edited for o in report.outputs if o.edited} == want["edited"]

    health = report.health
    assert health.run_failures == want["run_failures"]
    assert health.run_timeouts == want["timeouts"]
    assert health.abandoned_runs == want["abandoned"]
    assert health.dead_letters == want["events_by_status"].get("dead", 0)
    assert health.queued == want["events_by_status"].get("queued", 0)
    assert health.failing == want["events_by_status"].get("failed", 0)
    assert health.retried_deliveries == want["retried"]
    assert health.breaker_trips == 0  # the seed has none (tests/integration/test_breaker.py counts some)
    top = sorted(want["errors"].values(), reverse=True)[:5]
    assert [e.count for e in health.top_errors] == top
    for e in health.top_errors:
        assert want["errors"][(e.agent, e.status, e.error)] == e.count

    assert {k.name: k.count for k in report.events_by_kind} == dict(want["event_kinds"])  # 4 kinds: all listed

    agents = {a.agent: a for a in report.agents}
    assert set(agents) == set(want["agents"])
    for name, w in want["agents"].items():
        a = agents[name]
        assert a.decisions == dict(w["decisions"]), name
        assert (a.tokens_in, a.tokens_out) == (w["tokens_in"], w["tokens_out"]), name
        assert a.cost_usd == pytest.approx(w["cost"]), name
        assert a.outputs == dict(w["outputs"]), name
        if "runs" in w:
            assert (a.runs, a.wakes, a.ok, a.failures, a.abandoned, a.running) == (
                w["runs"],
                w["wakes"],
                w["ok"],
                w["failures"],
                w["abandoned"],
                w["running"],
            ), name
            assert a.p50_ms == pytest.approx(w["p50"]) and a.p95_ms == pytest.approx(w["p95"]), name
        else:
            assert a.runs == 0

    assert [s.date for s in report.series] == list(want["series"])
    for s in report.series:
        w = want["series"][s.date]
        assert (s.events, s.runs, s.run_failures, s.outputs) == (
            w["events"],
            w["runs"],
            w["run_failures"],
            w["outputs"],
        ), s.date
        assert s.decisions == w["decisions"], s.date
        assert s.cost_usd == pytest.approx(w["cost"]), s.date

    wow = want["wowvision_rules"]
    assert (
        sorted((r.count for r in report.wowvision.top_rules), reverse=True) == sorted(wow.values(), reverse=True)[:10]
    )
    assert all(wow[r.name] == r.count for r in report.wowvision.top_rules)
    # The seeded ledger rows carry no finding fingerprints, and no outcome is seeded: none opened, none fixed.
    assert report.wowvision.findings_opened == 0 and report.wowvision.findings_fixed == 0
    assert report.reputation == []
    assert report.wowvision.repos_most_open == []

    coe = report.coe
    assert (coe.handoffs_created, coe.handoffs_claimed) == (want["handoffs_created"], want["handoffs_claimed"])
    # The seeded contexts carry job ids but are no WowDomain job records or steps: no CoE job, no CoE spend.
    assert (coe.jobs_total, coe.jobs_active, coe.spend.steps, h.coe_cost_usd) == (0, 0, 0, 0.0)
    assert {c.name: c.count for c in report.audit} == want["audit"]
    assert report.first_day == want["first_day"]
    assert len(report.links) == min(want["links"], 30)


def test_report_figures_equal_the_seeded_day(store):
    seeded = seed(store, DAY)
    report = build_daily_report(store, DAY, "UTC", budget_usd=2.5, now=NOW)
    assert report.complete and not report.empty
    assert report.headline.budget_usd == 2.5
    check_figures(report, expected(seeded))


def test_days_are_cut_in_the_report_time_zone_even_on_a_23_hour_day(pg_store):
    # 2026-03-08: clocks go forward in New York, so the day is 23 hours long.
    day = date(2026, 3, 8)
    seeded = seed(pg_store, day, "America/New_York", rng_seed=11, scale=4)
    report = build_daily_report(pg_store, day, "America/New_York", now=NOW)
    assert report.start == "2026-03-08T00:00:00-05:00" and report.end == "2026-03-09T00:00:00-04:00"
    check_figures(report, expected(seeded))


def test_a_report_for_one_installation_sees_only_its_own_data(pg_store):
    seeded = seed(pg_store, DAY, rng_seed=3, scale=3)
    report = build_daily_report(pg_store, DAY, "UTC", installation_id=2, now=NOW)
    check_figures(report, expected(seeded, installation_id=2))
    assert all(link.repo == "other/gamma" for link in report.links)


def test_charts_are_valid_pngs(pg_store):
    seed(pg_store, DAY, scale=2)
    report = build_daily_report(pg_store, DAY, "UTC", budget_usd=0.05, now=NOW)
    charts = render_charts(report)
    assert set(charts) == {"decisions", "cost"}
    for name, png in charts.items():
        assert png.startswith(PNG_SIGNATURE), name
        with Image.open(io.BytesIO(png)) as image:
            image.verify()
        with Image.open(io.BytesIO(png)) as image:
            assert image.format == "PNG" and image.size == (800, 320), name
            assert len(image.convert("RGB").getcolors(maxcolors=1 << 16) or ()) > 10, f"{name} looks blank"
    assert render_charts(report) == charts  # no timestamps: a rerun makes the same bytes


def test_an_empty_day_is_reported_as_such(store):
    report = build_daily_report(store, DAY, "UTC", now=NOW)
    assert report.empty and report.complete
    assert report.headline.events == 0 and report.agents == [] and report.first_day is None
    assert any("No activity was recorded" in note for note in report.notes)
    text = render_markdown(report, image_links(report))
    assert "An empty day: no activity was recorded" in text
    assert "no data yet" in text.lower()
    for png in render_charts(report).values():
        assert png.startswith(PNG_SIGNATURE)


def test_a_day_with_partial_data_says_what_is_missing(pg_store):
    seeded = seed(pg_store, DAY, scale=1)
    with pg_store.session() as session:
        from sqlalchemy import delete

        from agents.store.tables import Decision

        session.execute(delete(Decision))
    report = build_daily_report(pg_store, DAY, "UTC", now=datetime(2026, 3, 10, 15, 30, tzinfo=UTC))
    assert not report.complete
    assert report.headline.events == expected(seeded)["events"]
    notes = " ".join(report.notes)
    assert "The day is not over: figures up to 15:30 UTC" in notes
    assert "decision ledger has no entries" in notes
    assert "No LLM budget is set" in notes
    text = render_markdown(report)
    assert "The day is not over yet" in text and "## Data notes" in text


def test_markdown_says_what_a_maintainer_needs_and_escapes_what_came_from_outside(pg_store):
    seeded = seed(pg_store, DAY)
    report = build_daily_report(pg_store, DAY, "UTC", budget_usd=0.01, now=NOW)
    text = render_markdown(report, image_links(report))
    for heading in (
        "## Headline",
        "## Health",
        "## Agents",
        "## Charts",
        "## Outputs on GitHub",
        "## WowVision",
        "## CoE jobs",
        "## Reputation",
        "## Links",
        "## Data notes",
    ):
        assert heading in text
    assert f"![Decisions by rung per day]({DAY}-decisions.png)" in text
    assert f"![LLM cost per day vs budget]({DAY}-cost.png)" in text
    assert f"| Events received | {expected(seeded)['events']:,} |" in text
    assert "over budget" in text
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert re.search(r"\| Decisions \| [\d,]+ \| (↑|↓|→)", text)
    assert "[octo/" in text or "[other/" in text  # links to the issues it mentions


# ------------------------------------------------------------------ the command


def settings_for(store, **values) -> Settings:
    return Settings(WAOOAW_DATABASE_URL=store.url, **values)


def test_command_writes_the_day_and_catches_up_missing_days(pg_store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    seed(pg_store, DAY, scale=1)
    (tmp_path / "reports" / "daily").mkdir(parents=True)
    first = DAY - timedelta(days=4)
    (tmp_path / "reports" / "daily" / f"{first}.md").write_text("# an earlier report\n")
    written = run_daily(settings_for(pg_store), DAY.isoformat(), None, Path("reports"), post=False, catch_up=7)
    names = sorted(p.name for p in written)
    days = [DAY - timedelta(days=n) for n in (3, 2, 1, 0)]
    assert names == sorted(f"{d}{suffix}" for d in days for suffix in (".md", "-decisions.png", "-cost.png"))
    assert not (tmp_path / "reports" / "daily" / f"{first - timedelta(days=1)}.md").exists()
    assert (tmp_path / "reports" / "daily" / f"{first}.md").read_text() == "# an earlier report\n"
    day_text = (tmp_path / "reports" / "daily" / f"{DAY}.md").read_text()
    assert day_text.startswith(f"# WAOOAW daily report — {DAY}")


def test_command_line_usage_errors_and_an_empty_day(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # The command points structlog at stderr, which CliRunner closes afterwards.
    monkeypatch.setattr("bot.logging.configure", lambda level="INFO": None)
    monkeypatch.setenv("WAOOAW_DATABASE_URL", f"sqlite:///{tmp_path / 'w.db'}")
    runner = CliRunner()
    result = runner.invoke(cli, ["report", "daily", "--post"])
    assert result.exit_code == 2 and "--repo" in result.output
    result = runner.invoke(cli, ["report", "daily", "--date", "2999-01-01"])
    assert result.exit_code == 2 and "has not started" in result.output
    result = runner.invoke(cli, ["report", "daily", "--date", "last week"])
    assert result.exit_code == 2 and "YYYY-MM-DD" in result.output
    monkeypatch.setenv("WAOOAW_API_URL", "http://127.0.0.1:9")
    result = runner.invoke(cli, ["report", "daily"])
    assert result.exit_code == 1 and "WAOOAW_API_TOKEN" in result.output
    monkeypatch.delenv("WAOOAW_API_URL")
    result = runner.invoke(cli, ["report", "daily", "--date", "2026-01-02"])
    assert result.exit_code == 0, result.output
    assert "an empty day" in result.output
    assert "An empty day" in (tmp_path / "reports" / "daily" / "2026-01-02.md").read_text()


# ------------------------------------------------------------------ posting


@pytest.fixture
def fake(fresh_github: FakeGitHub) -> FakeGitHub:
    return fresh_github


def report_issues(fake: FakeGitHub) -> dict[str, dict]:
    return {issue["title"]: issue for issue in fake.issues.values()}


def test_posting_twice_edits_one_issue_and_the_next_day_closes_it(pg_store, fake, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    events = expected(seed(pg_store, DAY, scale=1))["events"]
    settings = settings_for(pg_store, GITHUB_TOKEN="ghp_test", GITHUB_API_URL=fake.url)
    title = f"WAOOAW daily report — {DAY}"

    run_daily(settings, DAY.isoformat(), REPO, Path("reports"), post=True, catch_up=0)
    assert list(report_issues(fake)) == [title]
    issue = report_issues(fake)[title]
    assert issue["state"] == "open" and [label["name"] for label in issue["labels"]] == ["waooaw-report"]
    assert f"<!-- waooaw:reports:report:daily-{DAY} -->" in issue["body"]
    assert f"{fake.url}/{REPO}/blob/HEAD/reports/daily/{DAY}-decisions.png?raw=true" in issue["body"]

    # A late delivery for the day, then a rerun: the day's issue is edited, never doubled.
    with pg_store.session() as session:
        session.add(
            InboxRecord(
                delivery_id="late",
                event="push",
                body=b"{}",
                status="done",
                received_at=datetime(2026, 3, 10, 23, 59, tzinfo=UTC),
            )
        )
    run_daily(settings, DAY.isoformat(), REPO, Path("reports"), post=True, catch_up=0)
    assert list(report_issues(fake)) == [title], "a rerun must edit the day's issue, not open another"
    assert len(fake.calls("POST", rf"/repos/{REPO}/issues$")) == 1
    assert fake.calls("PATCH", rf"/repos/{REPO}/issues/{issue['number']}$")
    assert f"| Events received | {events + 1} |" in report_issues(fake)[title]["body"]

    next_day = DAY + timedelta(days=1)
    run_daily(settings, next_day.isoformat(), REPO, Path("reports"), post=True, catch_up=0)
    issues = report_issues(fake)
    assert set(issues) == {title, f"WAOOAW daily report — {next_day}"}
    assert issues[title]["state"] == "closed"
    assert issues[f"WAOOAW daily report — {next_day}"]["state"] == "open"
    assert len(fake.calls("POST", rf"/repos/{REPO}/issues$")) == 2
