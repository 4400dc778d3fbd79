"""Timer events end to end: the week's `schedule` delivery for a repository that hired crm-management →
the worker → the spec's issues reads from the fake GitHub → the pipeline summary issue opened and the
stale lead closed with a note there; the same week again changes nothing, and another repository
that did not hire it gets no event."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from agents import hires
from agents.store.db import Store
from bot.timers import wake_timers
from tests.fakes.github import FakeGitHub
from tests.helpers import drain, github_platform

REPO, OTHER = "acme/sales", "acme/other"
WEDNESDAY = datetime(2025, 1, 8, 9, 30, tzinfo=UTC)  # the timer's clock; staleness is GitHub's, by today


def test_a_weekly_timer_opens_the_pipeline_summary_and_closes_a_stale_lead(store: Store) -> None:
    with FakeGitHub() as fake:
        month_ago = (datetime.now(UTC) - timedelta(days=40)).strftime("%Y-%m-%dT%H:%M:%SZ")
        stale = fake.add_issue(REPO, "[Lead]: Initech", "hi", labels=["lead", "lead:qualified"], updated_at=month_ago)
        fresh = fake.add_issue(REPO, "[Lead]: Acme Robotics", "hi", labels=["lead", "lead:proposal"])
        fake.add_issue(REPO, "A bug", "not a lead", labels=["bug"], updated_at=month_ago)
        fake.add_issue(OTHER, "[Lead]: Elsewhere", "hi", labels=["lead"], updated_at=month_ago)
        with store.session() as session:
            hires.apply_config(session, None, REPO, ["crm-management"], (), {})

        def week(now: datetime) -> list[str]:
            platform = github_platform(store, fake.url)
            new = asyncio.run(wake_timers(store, platform.registry, platform.bus, now))
            asyncio.run(drain(platform))
            return new

        assert len(week(WEDNESDAY)) == 1
        (summary,) = [i for i in fake.issues.values() if i["title"] == "Sales pipeline, week 2025-W02"]
        assert "[Lead]: Initech" in summary["body"].replace("\\", "") and "lead:proposal (1)" in summary["body"]
        assert (stale["state"], stale["state_reason"]) == ("closed", "not_planned")
        assert fresh["state"] == "open"
        (note,) = [c for c in fake.comments.values() if c["issue_url"].endswith(f"/issues/{stale['number']}")]
        assert note["body"].startswith("This lead has had no update for 30 days")
        assert all(i["state"] == "open" for (repo, _), i in fake.issues.items() if repo == OTHER)

        writes = len([c for c in fake.requests if c.method in ("POST", "PATCH")])
        assert week(WEDNESDAY + timedelta(days=2)) == []  # the same week: recorded already
        assert len([c for c in fake.requests if c.method in ("POST", "PATCH")]) == writes
