"""Reputation from outcomes, end to end: real payloads → intake → worker → agent_outcomes → scores.

What the agents publish goes to the fake GitHub; what people then do to it arrives as the
real webhook payloads GitHub sends, pointed at those objects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from agents.outputs import Comment, IssueReport, Labels, Output, PullRequest
from agents.reputation import Score, scores
from agents.store.tables import AgentOutcome
from bot.app import create_app
from bot.github import GitHubClients
from bot.publish import Origin
from bot.reputation_jobs import reactions_schedule, read_reactions
from tests.conftest import TEST_SECRET, load_payload
from tests.e2e.conftest import wait_until
from tests.fakes.github import FakeGitHub
from tests.helpers import delivering, github_platform, make_platform, make_settings
from tests.vision_support import added

REPO = "Codertocat/Hello-World"
INSTALLATION = 1  # of the pull_request, pull_request_review_thread and issue_comment payloads below
HEAD = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
NEW_HEAD = "1" * 40
MAIN_V1 = 'import os\n\nAWS_KEY = "AKIAQYLPMN5HHHFPZAM2"\nbreakpoint()\nprint(os.getcwd())\n'
MAIN_V2 = 'import os\n\nAWS_KEY = "AKIAQYLPMN5HHHFPZAM2"\nprint(os.getcwd())\n'


@pytest.fixture
def world(store):
    with FakeGitHub() as fake:
        fake.set_permission("Codertocat", "admin")
        fake.pull_diffs[(REPO, 2)] = added("app/main.py", MAIN_V1)
        fake.files[(REPO, HEAD, "app/main.py")] = MAIN_V1.encode()
        with delivering(lambda: github_platform(store, fake.url)) as deliver:
            yield fake, deliver


def publish(store, fake: FakeGitHub, agent: str, outputs: Sequence[Output], installation: int | None) -> None:
    """What an agent's run publishes, as the worker would publish it."""

    async def run() -> None:
        platform = github_platform(store, fake.url)
        try:
            await platform.publisher.publish(agent, outputs, Origin("earlier-run", installation))
        finally:
            await platform.publisher.close()

    asyncio.run(run())


def score_of(store, agent: str, installation: int | None = INSTALLATION) -> Score | None:
    with store.reading() as session:
        return scores(session, installation, REPO).get(agent)


def kinds(store, agent: str, installation: int | None = INSTALLATION) -> dict[str, tuple[int, int]]:
    found = score_of(store, agent, installation)
    return {} if found is None else {k: (c.positive, c.negative) for k, c in found.by_kind.items()}


def opened() -> dict:
    return load_payload("pull_request/opened.payload.json")


def thread(action: str, review_id: int, comment_id: int = 284312630) -> dict:
    payload = load_payload(f"pull_request_review_thread/{action}.payload.json")
    first = payload["thread"]["comments"][0]
    first.update(pull_request_review_id=review_id, id=comment_id)
    payload["pull_request"]["number"] = 2
    return payload


def comment(text: str) -> dict:
    payload = load_payload("issue_comment/created.payload.json", comment__body=text)
    payload["issue"]["number"] = 2
    payload["issue"]["pull_request"] = {"url": f"https://api.github.com/repos/{REPO}/pulls/2"}
    payload["installation"] = opened()["installation"]
    return payload


# ---------------------------------------------------------------------- review threads


def test_the_app_subscribes_to_every_event_an_agent_wakes_on_or_tenancy_keeps(store):
    import yaml

    from agents.catalog import default_registry
    from bot.tenancy import TENANCY_EVENTS
    from bot.wiring import OWN_EVENTS
    from tests.conftest import ROOT

    subscribed = set(yaml.safe_load((ROOT / "app.yml").read_text())["default_events"])
    woken = default_registry(store).wake_event_names()
    assert {"pull_request_review_thread", "issues", "pull_request"} <= woken
    assert {"installation_repositories", "repository"} <= TENANCY_EVENTS
    # `installation` is always sent, never listed
    assert (woken | TENANCY_EVENTS) - OWN_EVENTS <= subscribed | {"installation"}


def test_a_resolved_thread_of_our_review_raises_its_agent_and_an_unresolved_one_lowers_it(world, store):
    fake, deliver = world
    deliver("pull_request", opened(), "pr-1")
    (review_id,) = fake.reviews
    assert score_of(store, "wowvision") is None

    assert deliver("pull_request_review_thread", thread("resolved", review_id), "t-1").status == "queued"
    after_resolved = score_of(store, "wowvision")
    assert after_resolved is not None and (after_resolved.positive, after_resolved.negative) == (1, 0)
    assert after_resolved.evidence[0].kind == "thread_resolved"

    deliver("pull_request_review_thread", thread("unresolved", review_id, comment_id=7), "t-2")
    after_unresolved = score_of(store, "wowvision")
    assert after_unresolved is not None and after_unresolved.value < after_resolved.value
    assert kinds(store, "wowvision") == {"thread_resolved": (1, 0), "thread_unresolved": (0, 1)}


def test_a_redelivered_outcome_counts_once(world, store):
    fake, deliver = world
    deliver("pull_request", opened(), "pr-1")
    (review_id,) = fake.reviews
    deliver("pull_request_review_thread", thread("resolved", review_id), "t-1")
    assert deliver("pull_request_review_thread", thread("resolved", review_id), "t-1").status == "duplicate"
    # GitHub's redelivery keeps the delivery id; a new one (a replay, a recovered delivery) still counts once.
    deliver("pull_request_review_thread", thread("resolved", review_id), "t-1-replayed")
    assert kinds(store, "wowvision") == {"thread_resolved": (1, 0)}


def test_a_thread_of_a_review_no_agent_published_moves_nothing(world, store):
    fake, deliver = world
    theirs = fake.add_review(REPO, 2, "looks fine", "COMMENT", HEAD)
    deliver("pull_request_review_thread", thread("resolved", theirs["id"]), "t-1")
    with store.reading() as session:
        assert session.scalar(select(func.count()).select_from(AgentOutcome)) == 0


# ---------------------------------------------------------------------- pull requests


def test_a_pull_request_an_agent_opened_merged_counts_for_it_and_one_closed_unmerged_against(world, store):
    fake, deliver = world
    for key in ("one", "two"):
        pull = PullRequest(REPO, f"waooaw/{key}", f"Spec {key}", "the spec", key=key, files={f"{key}.md": "x"})
        publish(store, fake, "wowdomain", [pull], INSTALLATION)
    first, second = (p["number"] for p in fake.pull_requests)

    merged = load_payload("pull_request/closed.payload.json", number=first)
    merged["pull_request"].update(number=first, merged=True)
    deliver("pull_request", merged, "closed-1")
    assert kinds(store, "wowdomain") == {"pr_merged": (1, 0)}

    unmerged = load_payload("pull_request/closed.payload.json", number=second)
    unmerged["pull_request"].update(number=second, merged=False)
    deliver("pull_request", unmerged, "closed-2")
    assert kinds(store, "wowdomain") == {"pr_merged": (1, 0), "pr_closed": (0, 1)}

    # A person's own pull request (number 2 of the fixture, never published by an agent) moves nothing.
    deliver("pull_request", load_payload("pull_request/closed.payload.json"), "closed-theirs")
    assert kinds(store, "wowdomain") == {"pr_merged": (1, 0), "pr_closed": (0, 1)}


# ---------------------------------------------------------------------- triage labels


def issue_event(action: str, number: int, label: str | None, labels: Sequence[str]) -> dict:
    payload = load_payload("issues/labeled.payload.json", action=action)  # no installation: token auth
    payload["issue"].update(number=number, labels=[{**payload["label"], "name": name} for name in labels])
    if label is None:
        del payload["label"]
    else:
        payload["label"]["name"] = label
    return payload


def test_labels_a_person_changes_on_an_agents_issue_count_against_it_and_kept_ones_for_it(world, store):
    fake, deliver = world
    for key in ("changed", "kept"):
        issue = IssueReport(REPO, f"Triage {key}", "what was found", key=key, labels=("bug",))
        publish(store, fake, "wowvision", [issue], None)
    changed, kept = (number for (_, number) in fake.issues)

    assert deliver("issues", issue_event("labeled", changed, "question", ["bug", "question"]), "l-1").status == "queued"
    assert kinds(store, "wowvision", None) == {"triage_changed": (0, 1)}
    # Taking off the label a person put on says nothing of the agent's triage; taking off its own does.
    deliver("issues", issue_event("unlabeled", changed, "question", ["bug"]), "l-2")
    assert kinds(store, "wowvision", None) == {"triage_changed": (0, 1)}
    deliver("issues", issue_event("unlabeled", changed, "bug", []), "l-3")
    assert kinds(store, "wowvision", None) == {"triage_changed": (0, 2)}

    deliver("issues", issue_event("closed", changed, None, []), "close-changed")
    deliver("issues", issue_event("closed", kept, None, ["bug"]), "close-kept")
    assert kinds(store, "wowvision", None) == {"triage_changed": (0, 2), "triage_kept": (1, 0)}


def test_labels_an_agent_put_on_a_persons_issue_are_its_triage(world, store):
    fake, deliver = world
    theirs = fake.add_issue(REPO, "App crashes on start", "stack trace", user=fake.user("alice", 501))
    labelled = Labels(REPO, theirs["number"], ("bug",), key=f"triage:{theirs['number']}")
    publish(store, fake, "tech-support", [labelled], None)
    assert [label["name"] for label in fake.issues[(REPO, theirs["number"])]["labels"]] == ["bug"]
    deliver("issues", issue_event("closed", theirs["number"], None, ["bug"]), "close-1")
    assert kinds(store, "tech-support", None) == {"triage_kept": (1, 0)}
    # A person's issue nobody labelled is no agent's triage.
    other = fake.add_issue(REPO, "Docs typo", "", labels=("docs",), user=fake.user("bob", 502))
    deliver("issues", issue_event("closed", other["number"], None, ["docs"]), "close-2")
    assert kinds(store, "tech-support", None) == {"triage_kept": (1, 0)}


def test_what_our_own_app_does_to_an_issue_is_no_outcome(world, store):
    fake, deliver = world
    publish(store, fake, "wowvision", [IssueReport(REPO, "Triage", "found", key="k", labels=("bug",))], None)
    ((_, number),) = fake.issues
    by_bot = issue_event("labeled", number, "question", ["bug", "question"])
    by_bot["sender"] = fake.bot
    deliver("issues", by_bot, "l-bot")
    assert kinds(store, "wowvision", None) == {}


# ---------------------------------------------------------------------- WowVision's findings


def test_a_finding_fixed_in_a_later_commit_counts_for_wowvision_and_an_ignored_rule_against(world, store):
    fake, deliver = world
    deliver("pull_request", opened(), "pr-1")
    fake.pull_diffs[(REPO, 2)] = added("app/main.py", MAIN_V2)
    fake.files[(REPO, NEW_HEAD, "app/main.py")] = MAIN_V2.encode()
    moved = load_payload("pull_request/opened.payload.json", action="synchronize")
    moved["pull_request"]["head"]["sha"] = NEW_HEAD
    deliver("pull_request", moved, "pr-2")
    found = score_of(store, "wowvision")
    assert found is not None and kinds(store, "wowvision") == {"finding_fixed": (1, 0)}
    assert found.evidence[0].rule == "hygiene-breakpoint"

    deliver("issue_comment", comment("/wowvision ignore secret-aws-key it is a test fixture"), "c-1")
    assert kinds(store, "wowvision") == {"finding_fixed": (1, 0), "finding_ignored": (0, 1)}
    # The ignored rule's finding is gone from the next review, but it was not fixed.
    moved["pull_request"]["head"]["sha"] = "2" * 40
    fake.files[(REPO, "2" * 40, "app/main.py")] = MAIN_V2.encode()
    deliver("pull_request", moved, "pr-3")
    assert kinds(store, "wowvision") == {"finding_fixed": (1, 0), "finding_ignored": (0, 1)}


def push(before: str, after: str) -> dict:
    payload = load_payload("push/with-new-branch.payload.json", before=before, after=after)
    payload["repository"].update(full_name=REPO, name="Hello-World")
    payload["repository"]["owner"]["login"] = "Codertocat"
    payload["installation"] = {"id": INSTALLATION, "node_id": "I_1"}
    return payload


def test_a_finding_fixed_on_the_default_branch_counts_even_when_found_by_a_push_that_found_others_before(world, store):
    fake, deliver = world
    shas = ["a" * 40, "b" * 40, "c" * 40, "d" * 40]
    steps = [  # each push changes one file
        ("app/a.py", "breakpoint()\n"),
        ("app/b.py", "breakpoint()\n"),  # found while the first is still open
        ("app/b.py", "pass\n"),  # fixes the second
    ]
    for (path, content), before, after in zip(steps, shas[:-1], shas[1:], strict=True):
        fake.compare_diffs[(REPO, before, after)] = added(path, content)
        fake.files[(REPO, after, path)] = content.encode()
        deliver("push", push(before, after), f"push-{after[0]}")
    assert kinds(store, "wowvision") == {"finding_fixed": (1, 0)}
    with store.reading() as session:
        fixed = session.scalars(select(AgentOutcome)).one()
    assert (fixed.rule, fixed.evidence["path"], fixed.evidence["fixed_at"]) == (
        "hygiene-breakpoint",
        "app/b.py",
        shas[3],
    )


# ---------------------------------------------------------------------- reactions, in batch


def test_reactions_on_agents_comments_are_read_in_batch_once_and_withdrawn_when_taken_back(world, store):
    fake, _deliver = world
    publish(store, fake, "concierge", [Comment(REPO, 2, "Here is how", key="help:2")], INSTALLATION)
    (comment_id,) = fake.comments
    alice, bob = fake.user("alice", 501), fake.user("bob", 502)
    liked = fake.add_reaction(REPO, comment_id, "+1", alice)
    fake.add_reaction(REPO, comment_id, "-1", bob)
    fake.add_reaction(REPO, comment_id, "heart", alice)  # no verdict
    fake.add_reaction(REPO, comment_id, "+1", fake.user("dependabot[bot]", 49699333, type="Bot"))  # not a person

    settings = make_settings(GITHUB_TOKEN="ghs_test", GITHUB_API_URL=fake.url)

    def collect():
        async def run():
            clients = GitHubClients(settings, max_wait=1)
            try:
                return await read_reactions(settings, clients, store)
            finally:
                await clients.aclose()

        return asyncio.run(run())

    first = collect()
    assert (first.comments, first.recorded, first.withdrawn) == (1, 2, 0)
    assert kinds(store, "concierge") == {"reaction_up": (1, 0), "reaction_down": (0, 1)}
    again = collect()
    assert (again.recorded, again.withdrawn) == (0, 0)
    assert kinds(store, "concierge") == {"reaction_up": (1, 0), "reaction_down": (0, 1)}

    fake.remove_reaction(liked["id"])
    taken_back = collect()
    assert (taken_back.recorded, taken_back.withdrawn) == (0, 1)
    assert kinds(store, "concierge") == {"reaction_down": (0, 1)}
    assert fake.calls("GET", rf"/issues/comments/{comment_id}/reactions$")


def test_the_app_reads_reactions_on_its_schedule(sqlite_store):
    with FakeGitHub() as fake:
        publish(sqlite_store, fake, "concierge", [Comment(REPO, 2, "Here is how", key="help:2")], INSTALLATION)
        (comment_id,) = fake.comments
        fake.add_reaction(REPO, comment_id, "+1", fake.user("alice", 501))
        settings = make_settings(GITHUB_TOKEN="ghs_test", GITHUB_API_URL=fake.url, WAOOAW_REACTIONS_INTERVAL="1h")
        platform = make_platform(sqlite_store, settings=settings)
        platform.github = GitHubClients(settings, max_wait=1)
        with TestClient(create_app(platform, secret=TEST_SECRET, run_worker=False)):
            wait_until(lambda: kinds(sqlite_store, "concierge"), "the scheduled read of reactions")
        assert kinds(sqlite_store, "concierge") == {"reaction_up": (1, 0)}


def test_the_reactions_schedule_is_on_by_default_with_credentials_and_off_at_0_or_without(sqlite_store):
    on = make_settings(GITHUB_TOKEN="ghs_test")
    off = make_settings(GITHUB_TOKEN="ghs_test", WAOOAW_REACTIONS_INTERVAL="0")
    assert on.reactions_interval == timedelta(hours=6) and off.reactions_interval == timedelta(0)
    schedule = reactions_schedule(on, GitHubClients(on), sqlite_store, asyncio.Event())
    assert schedule is not None
    schedule.close()  # never run
    assert reactions_schedule(off, GitHubClients(off), sqlite_store, asyncio.Event()) is None
    assert reactions_schedule(on, None, sqlite_store, asyncio.Event()) is None


# ---------------------------------------------------------------------- where it shows


def test_waooaw_status_shows_each_agents_reputation_here(world, store):
    fake, deliver = world
    deliver("pull_request", opened(), "pr-1")
    (review_id,) = fake.reviews
    deliver("pull_request_review_thread", thread("resolved", review_id), "t-1")
    deliver("issue_comment", comment("/waooaw status"), "c-1")
    status = next(c for c in fake.comments.values() if "waooaw:concierge:comment:status:2" in c["body"])["body"]
    expected = score_of(store, "wowvision")
    assert expected is not None
    rows = {line.split(" | ")[0]: line for line in status.splitlines() if line.startswith("| `")}
    assert rows["| `wowvision`"].endswith(f"| on by default, active | {expected.value:.2f} (1+ / 0−) |")
    assert rows["| `outcome-clerk`"].endswith("| on by default, active | — |")
