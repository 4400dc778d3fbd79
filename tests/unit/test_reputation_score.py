"""The score's arithmetic (agents/reputation/score.py), and the outcome kinds it weighs."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from agents.reputation import KINDS, summary, wilson_lower_bound
from agents.reputation.score import PRIOR_NEGATIVE, PRIOR_POSITIVE, Evidence, Tally, score, unjudged
from agents.vision.agent import _inline_text
from agents.vision.findings import Finding
from agents.vision.outcomes import inline_rule


@pytest.mark.parametrize(
    ("positive", "total", "expected"),
    [
        (0, 0, 0.0),
        (0, 10, 0.0),
        (5, 10, 0.2366),  # the textbook values at z = 1.96
        (10, 10, 0.7225),
        (81, 100, 0.7222),
    ],
)
def test_wilson_lower_bound_matches_known_values(positive, total, expected):
    assert wilson_lower_bound(positive, total) == pytest.approx(expected, abs=1e-4)


def test_more_evidence_of_the_same_share_scores_higher_and_the_bound_stays_below_the_share():
    few, many = wilson_lower_bound(3, 4), wilson_lower_bound(30, 40)
    assert few < many < 0.75


def test_the_prior_keeps_an_unjudged_agent_between_a_good_and_a_bad_one():
    nothing = unjudged("a", "o/r")
    assert (nothing.positive, nothing.negative, nothing.outcomes) == (0, 0, 0)
    assert nothing.mean == pytest.approx(PRIOR_POSITIVE / (PRIOR_POSITIVE + PRIOR_NEGATIVE))
    assert nothing.value == pytest.approx(wilson_lower_bound(PRIOR_POSITIVE, PRIOR_POSITIVE + PRIOR_NEGATIVE))
    good = score("a", "o/r", [Tally("pr_merged", True, 5, 5.0)])
    bad = score("a", "o/r", [Tally("pr_closed", False, 5, 5.0)])
    assert bad.value < nothing.value < good.value
    assert bad.mean < nothing.mean < good.mean


def test_weights_count_not_the_number_of_outcomes():
    clicks = score("a", "o/r", [Tally("reaction_up", True, 4, 2.0)])
    merges = score("a", "o/r", [Tally("pr_merged", True, 2, 2.0)])
    assert clicks.value == pytest.approx(merges.value)
    assert (clicks.positive, merges.positive) == (4, 2)


def test_a_score_counts_by_kind_and_lists_the_newest_evidence_first():
    now = datetime(2026, 3, 10, tzinfo=UTC)
    tallies = [
        Tally("thread_resolved", True, 3, 3.0),
        Tally("thread_unresolved", False, 1, 1.0),
        Tally("reaction_up", True, 2, 1.0),
    ]
    evidence = [
        Evidence("thread_resolved", True, "thread-1", now - timedelta(days=2)),
        Evidence("thread_unresolved", False, "thread-2", now),
    ]
    found = score("wowvision", "o/r", tallies, evidence)
    assert (found.positive, found.negative) == (5, 1)
    assert {k: (c.positive, c.negative) for k, c in found.by_kind.items()} == {
        "reaction_up": (2, 0),
        "thread_resolved": (3, 0),
        "thread_unresolved": (0, 1),
    }
    good, bad = 4.0 + PRIOR_POSITIVE, 1.0 + PRIOR_NEGATIVE
    assert found.mean == pytest.approx(good / (good + bad))
    assert found.value == pytest.approx(wilson_lower_bound(good, good + bad))
    assert [e.subject for e in found.evidence] == ["thread-2", "thread-1"]
    assert 0 < found.value < found.mean < 1 and not math.isnan(found.value)


def test_the_summary_shows_the_score_and_its_counts_or_a_dash():
    assert summary(None) == "—"
    assert summary(unjudged("a", "o/r")) == "—"
    found = score("a", "o/r", [Tally("pr_merged", True, 7, 7.0), Tally("pr_closed", False, 2, 2.0)])
    assert summary(found) == f"{found.value:.2f} (7+ / 2−)"


def test_every_kind_is_for_or_against_and_clicks_weigh_less_than_acts():
    assert {kind for kind, k in KINDS.items() if k.positive} == {
        "finding_fixed",
        "thread_resolved",
        "triage_kept",
        "pr_merged",
        "reaction_up",
    }
    assert KINDS["reaction_up"].weight < KINDS["pr_merged"].weight


def test_the_rule_of_a_wowvision_inline_comment_is_read_back_from_how_wowvision_writes_it():
    finding = Finding("hygiene-breakpoint", "warning", "a.py", 3, 3, "a `breakpoint()` is left", "remove it", "fp")
    assert inline_rule(_inline_text(finding)) == "hygiene-breakpoint"
    assert inline_rule("Maybe you should use more emoji on this line.") is None
    assert inline_rule(None) is None
