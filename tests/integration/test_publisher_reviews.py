"""GitHubPublisher's reviews when GitHub refuses an inline comment, and review dismissals.

A review with one comment outside the diff fails whole with 422, and GitHub does not
say which comment: the publisher tells them apart with pending reviews (deleted at
once) and keeps the ones that anchor inline. The fixtures come from test_publisher.py,
so every store-backed test here also runs on both SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
import structlog

from agents.outputs import InlineComment, Output, Review, ReviewDismissal, marker
from agents.store.db import Store
from agents.store.tables import PublishedOutput
from bot.publish import REVIEW_PROBE_LIMIT, GitHubPublisher, Origin, PublishError
from tests.fakes.github import FakeGitHub
from tests.integration.test_publisher import (  # noqa: F401 - fixtures
    AGENT,
    REPO,
    SHA,
    _no_ambient_credentials,
    event,
    fake,
    publisher,
    rows,
)

GOOD = (InlineComment("a.py", 3, "first"), InlineComment("b.py", 10, "span", start_line=8))
BAD = InlineComment("gone.py", 99, "Outside the diff")


def publish(publisher: GitHubPublisher, *outputs: Output, delivery: str = "delivery-1") -> None:
    asyncio.run(publisher.publish(AGENT, outputs, Origin.of(event(delivery))))


def review(comments: Sequence[InlineComment], event: str = "COMMENT", sha: str = SHA) -> Review:
    return Review(REPO, 2, sha, "3 findings", key="pr-2", event=event, comments=tuple(comments))


def anchored(fake: FakeGitHub, comments: Sequence[InlineComment]) -> None:
    fake.valid_anchors = {(c.path, c.line) for c in comments}


def submitted(fake: FakeGitHub) -> list[dict]:
    """The reviews on GitHub; none may be left pending."""
    assert [r for r in fake.reviews.values() if r["state"] == "PENDING"] == []
    return list(fake.reviews.values())


def inline_of(fake: FakeGitHub, posted: dict) -> list[tuple[str, int]]:
    return [(c["path"], c["line"]) for c in fake.review_comments[posted["id"]]]


def test_a_comment_outside_the_diff_goes_to_the_body_and_the_others_stay_inline(
    publisher: GitHubPublisher, fake: FakeGitHub, store: Store
) -> None:
    anchored(fake, GOOD)
    with structlog.testing.capture_logs() as logs:
        publish(publisher, review([GOOD[0], BAD, GOOD[1]]))

    (posted,) = submitted(fake)
    assert posted["state"] == "COMMENTED" and posted["commit_id"] == SHA
    assert inline_of(fake, posted) == [("a.py", 3), ("b.py", 10)]
    assert "could not be placed on the diff" in posted["body"] and "`gone.py:99` — Outside the diff" in posted["body"]
    assert "`a.py:3`" not in posted["body"] and "b.py:8-10" not in posted["body"]
    assert posted["body"].startswith("3 findings") and posted["body"].endswith(marker(AGENT, "review", "pr-2"))
    probes = [c for c in fake.calls("POST", r"/pulls/2/reviews$") if "event" not in c.json]
    assert probes and len(probes) + len(fake.calls("DELETE", r"/reviews/\d+$")) <= 2 * 3
    (warning,) = [entry for entry in logs if entry["event"] == "publish.review_inline_rejected"]
    assert (warning["comments"], warning["moved"], warning["probes_sufficed"]) == (3, 1, True)
    assert len(rows(store)) == 1


def test_when_no_comment_anchors_all_go_to_the_body(publisher: GitHubPublisher, fake: FakeGitHub) -> None:
    anchored(fake, [])
    publish(publisher, review([*GOOD, BAD]))

    (posted,) = submitted(fake)
    assert fake.review_comments[posted["id"]] == []
    final = fake.calls("POST", r"/pulls/2/reviews$")[-1]
    assert final.json["event"] == "COMMENT" and "comments" not in final.json
    for where in ("`a.py:3` — first", "`b.py:8-10` — span", "`gone.py:99` — Outside the diff"):
        assert where in posted["body"]


def test_past_the_probe_budget_every_comment_goes_to_the_body(publisher: GitHubPublisher, fake: FakeGitHub) -> None:
    comments = [InlineComment("a.py", line, f"finding {line}") for line in range(1, 31)]
    anchored(fake, comments[:1])  # telling 29 bad comments from 1 good one takes more than the budget

    publish(publisher, review(comments))

    (posted,) = submitted(fake)
    assert fake.review_comments[posted["id"]] == []
    assert "`a.py:1` — finding 1" in posted["body"] and "`a.py:30` — finding 30" in posted["body"]
    probing = len(fake.calls("POST", r"/pulls/2/reviews$")) - 2 + len(fake.calls("DELETE", r"/reviews/\d+$"))
    assert 0 < probing <= REVIEW_PROBE_LIMIT


def test_a_redelivery_after_probing_posts_no_second_review(
    publisher: GitHubPublisher, fake: FakeGitHub, store: Store
) -> None:
    anchored(fake, GOOD)
    publish(publisher, review([*GOOD, BAD]))
    requests = len(fake.requests)
    publish(publisher, review([*GOOD, BAD]), delivery="d-2")  # the record answers
    assert len(fake.requests) == requests
    with store.session() as session:  # the crash window: GitHub has it, the record does not
        session.query(PublishedOutput).delete()
    publish(publisher, review([*GOOD, BAD]), delivery="d-3")
    (posted,) = submitted(fake)
    assert inline_of(fake, posted) == [("a.py", 3), ("b.py", 10)]
    assert len(rows(store)) == 1


def test_a_probe_left_pending_by_a_failed_delete_is_removed_on_the_retry(
    publisher: GitHubPublisher, fake: FakeGitHub
) -> None:
    anchored(fake, GOOD)
    fake.fail_next("DELETE", r"/pulls/2/reviews/\d+$", 404)
    with pytest.raises(PublishError):
        publish(publisher, review([*GOOD, BAD]))
    assert [r["state"] for r in fake.reviews.values()] == ["PENDING"]  # GitHub would refuse any other review now

    publish(publisher, review([*GOOD, BAD]), delivery="retry")
    (posted,) = submitted(fake)
    assert posted["state"] == "COMMENTED" and inline_of(fake, posted) == [("a.py", 3), ("b.py", 10)]


# ---------------------------------------------------------------- dismissals


def test_our_reviews_requesting_changes_are_dismissed_once(publisher: GitHubPublisher, fake: FakeGitHub) -> None:
    publish(publisher, review([], event="REQUEST_CHANGES"))
    publish(publisher, review([], event="REQUEST_CHANGES", sha="b" * 40))
    publish(publisher, review([], sha="c" * 40))  # a COMMENT review: nothing to dismiss
    fake.add_review(REPO, 2, "Please fix", "REQUEST_CHANGES", SHA)  # someone else's: no marker of ours
    hidden = marker(AGENT, "review", "pr-2")
    fake.add_review(REPO, 2, f"Copied\n\n{hidden}", "REQUEST_CHANGES", SHA)  # someone else's, with our marker

    dismissal = ReviewDismissal(REPO, 2, "pr-2", "The findings that requested changes are fixed.")
    publish(publisher, dismissal)
    publish(publisher, dismissal, delivery="d-2")

    states = sorted((r["body"].split("\n")[0], r["commit_id"][0], r["state"]) for r in fake.reviews.values())
    assert states == [
        ("3 findings", "a", "DISMISSED"),
        ("3 findings", "b", "DISMISSED"),
        ("3 findings", "c", "COMMENTED"),
        ("Copied", "a", "CHANGES_REQUESTED"),
        ("Please fix", "a", "CHANGES_REQUESTED"),
    ]
    puts = fake.calls("PUT", r"/pulls/2/reviews/\d+/dismissals$")
    assert len(puts) == 2 and all(c.status == 200 for c in puts)
    assert puts[0].json == {"message": "The findings that requested changes are fixed.", "event": "DISMISS"}
