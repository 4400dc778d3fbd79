"""Outcomes in the store: recorded once, scored per agent per repository, in the daily report, on both databases."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select

from agents.reports import build_daily_report, render_markdown
from agents.reputation import Outcome, ranked, record, record_outcomes, scores
from agents.reputation.score import unjudged
from agents.store.tables import AgentOutcome

DAY = date(2026, 3, 10)
NOON = datetime(2026, 3, 10, 12, tzinfo=UTC)
REPO = "octo/alpha"


def outcome(agent: str, kind: str, subject: str, *, installation: int | None = 7, at: datetime = NOON, **values):
    return Outcome(installation, values.pop("repo", REPO), agent, kind, subject, observed_at=at, **values)


def test_an_outcome_is_recorded_once_whatever_else_differs(store):
    first = outcome("wowvision", "thread_resolved", "thread-1", delivery_id="d1", url="https://github.com/x")
    again = outcome("wowvision", "thread_resolved", "thread-1", delivery_id="d2", at=NOON + timedelta(hours=1))
    with store.session() as session:
        assert record(session, [first]) == 1
    with store.session() as session:
        assert record(session, [again, outcome("wowvision", "thread_resolved", "thread-2")]) == 1
    assert record_outcomes(store, []) == 0
    with store.reading() as session:
        rows = session.execute(select(AgentOutcome.subject, AgentOutcome.delivery_id, AgentOutcome.positive)).all()
    assert sorted(rows) == [("thread-1", "d1", True), ("thread-2", None, True)]


def test_scores_are_per_agent_per_repository_of_one_installation_with_their_latest_evidence(store):
    record_outcomes(
        store,
        [
            *[
                outcome("wowvision", "finding_fixed", f"pr-1:{n}", rule="r", at=NOON + timedelta(minutes=n))
                for n in range(12)
            ],
            outcome("wowvision", "finding_ignored", "rule:r", rule="r", at=NOON - timedelta(days=1)),
            outcome("wowdomain", "pr_closed", "pr-9"),
            outcome("wowdomain", "pr_merged", "pr-9", repo="octo/beta"),  # another repository
            outcome("concierge", "reaction_up", "comment-1:user-5", installation=8),  # another installation
            outcome("concierge", "reaction_down", "comment-1:user-6", installation=None),  # token auth
        ],
    )
    with store.reading() as session:
        found = scores(session, 7, REPO)
        evidence_free = scores(session, 7, REPO, evidence=0)
        tokens = scores(session, None, REPO)
    assert sorted(found) == ["wowdomain", "wowvision"]
    vision = found["wowvision"]
    assert (vision.positive, vision.negative) == (12, 1)
    assert len(vision.evidence) == 10 and vision.evidence[0].subject == "pr-1:11"
    assert vision.evidence[0].rule == "r" and vision.evidence[0].positive
    assert (found["wowdomain"].positive, found["wowdomain"].negative) == (0, 1)
    assert evidence_free["wowvision"].evidence == () and evidence_free["wowvision"].value == vision.value
    assert list(tokens) == ["concierge"] and tokens["concierge"].negative == 1
    # A coordinator's order: best first; an agent without outcomes has the prior's score.
    assert ranked(found, ["wowdomain", "tech-support", "wowvision"]) == ["wowvision", "tech-support", "wowdomain"]
    assert found["wowdomain"].value < unjudged("tech-support", REPO).value < vision.value


def test_the_daily_report_shows_reputation_by_repository_and_the_days_findings_fixed(store):
    record_outcomes(
        store,
        [
            outcome("wowvision", "finding_fixed", "pr-1:a", rule="r"),
            outcome("wowvision", "finding_fixed", "pr-1:b", rule="r", at=NOON - timedelta(days=1)),
            outcome("wowvision", "thread_unresolved", "thread-3"),
            outcome("wowvision", "finding_fixed", "pr-1:c", at=NOON + timedelta(days=1)),  # after the day
            outcome("wowdomain", "pr_merged", "pr-4", repo="octo/beta", installation=8),
        ],
    )
    report = build_daily_report(store, DAY, "UTC", now=NOON + timedelta(days=2))
    rows = {(r.repo, r.agent): r for r in report.reputation}
    assert sorted(rows) == [("octo/alpha", "wowvision"), ("octo/beta", "wowdomain")]
    vision = rows[("octo/alpha", "wowvision")]
    assert (vision.positive, vision.negative, vision.positive_today, vision.negative_today) == (2, 1, 1, 1)
    assert vision.by_kind == {"finding_fixed": 2, "thread_unresolved": 1}
    assert 0 < vision.score < 1
    assert report.wowvision.findings_fixed == 1

    text = render_markdown(report)
    assert "## Reputation" in text
    kinds = "2 `finding_fixed`, 1 `thread_unresolved`"
    assert f"| octo/alpha | `wowvision` | {vision.score:.2f} | 2 / 1 | 1 / 1 | {kinds} |" in text

    with store.session() as session:
        from agents.store.tables import Installation

        session.add(Installation(id=8, account="octo", repos=["octo/beta"]))
    mine = build_daily_report(store, DAY, "UTC", installation_id=8, now=NOON + timedelta(days=2))
    assert [(r.repo, r.agent) for r in mine.reputation] == [("octo/beta", "wowdomain")]
    assert mine.wowvision.findings_fixed == 0


def test_a_report_without_outcomes_says_so(store):
    report = build_daily_report(store, DAY, "UTC", now=NOON + timedelta(days=2))
    assert report.reputation == [] and report.wowvision.findings_fixed == 0
    assert "_No outcome of an agent's output is recorded yet._" in render_markdown(report)
    with store.reading() as session:
        assert session.scalar(select(func.count()).select_from(AgentOutcome)) == 0
