"""Labels: real githubkit → fake GitHub on loopback, records in SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import io

import pytest
from sqlalchemy import select

from agents.outputs import Labels, Output, marker
from agents.store.db import Store
from agents.store.tables import PublishedOutput
from bot.github import GitHubClients
from bot.publish import DryRunPublisher, GitHubPublisher, Origin, Published, Publisher
from bot.settings import Settings
from tests.fakes.github import FakeGitHub, app_private_key

REPO = "octo/repo"
AGENT = "technical-support"
INSTALLATION = 31


@pytest.fixture
def fake(fresh_github: FakeGitHub) -> FakeGitHub:
    return fresh_github


@pytest.fixture
def publisher(store: Store, fake: FakeGitHub) -> GitHubPublisher:
    settings = Settings(GITHUB_API_URL=fake.url, GITHUB_APP_ID=7, GITHUB_APP_PRIVATE_KEY=app_private_key())
    return GitHubPublisher(store, GitHubClients(settings, max_wait=0.01))


def publish(publisher: Publisher, *outputs: Output, delivery: str = "d-1") -> list[Published]:
    return asyncio.run(publisher.publish(AGENT, outputs, Origin(delivery, INSTALLATION)))


def names(fake: FakeGitHub, number: int) -> list[str]:
    return [label["name"] for label in fake.issues[(REPO, number)]["labels"]]


def changes(fake: FakeGitHub) -> list[tuple[str, str]]:
    return [(c.method, c.path) for c in fake.requests if c.method in ("POST", "DELETE") and "/labels" in c.path]


def test_adds_and_removes_labels_and_records_them(publisher: GitHubPublisher, fake: FakeGitHub, store: Store) -> None:
    issue = fake.add_issue(REPO, "Crash", None, labels=["needs-triage", "bug"])
    n = issue["number"]

    published = publish(publisher, Labels(REPO, n, ("bug", "area:cli"), remove=("needs-triage", "absent"), key=f"{n}"))

    assert names(fake, n) == ["bug", "area:cli"]
    # only the missing label is added; only a present one is removed
    assert changes(fake) == [
        ("POST", f"/repos/{REPO}/issues/{n}/labels"),
        ("DELETE", f"/repos/{REPO}/issues/{n}/labels/needs-triage"),
    ]
    assert fake.calls("POST", r"/labels$")[0].json == {"labels": ["area:cli"]}
    assert published == [Published("labels", f"{n}", n, None)]
    with store.session() as session:
        (row,) = session.scalars(select(PublishedOutput))
        assert (row.marker, row.kind, row.repo, row.github_id, row.delivery_id) == (
            marker(AGENT, "labels", f"{n}"),
            "labels",
            REPO,
            n,
            "d-1",
        )


def test_publishing_again_changes_nothing(publisher: GitHubPublisher, fake: FakeGitHub) -> None:
    n = fake.add_issue(REPO, "Crash", None, labels=["needs-triage"])["number"]
    output = Labels(REPO, n, ("bug",), remove=("needs-triage",), key="triage")
    publish(publisher, output, delivery="d-1")
    # a maintainer disagrees: the label goes back, the agent's goes; a redelivery does not overrule them
    fake.issues[(REPO, n)]["labels"] = [fake._label(REPO, "needs-triage")]
    fake.requests.clear()

    publish(publisher, output, delivery="d-2")

    assert names(fake, n) == ["needs-triage"]
    assert fake.calls("GET", r"/labels$") == [] and changes(fake) == []


def test_a_changed_decision_under_the_same_key_is_applied(publisher: GitHubPublisher, fake: FakeGitHub) -> None:
    n = fake.add_issue(REPO, "Crash", None)["number"]
    publish(publisher, Labels(REPO, n, ("question",), key="triage"), delivery="d-1")
    publish(publisher, Labels(REPO, n, ("bug",), remove=("question",), key="triage"), delivery="d-2")
    assert names(fake, n) == ["bug"]


def test_labels_already_as_wanted_make_no_change(publisher: GitHubPublisher, fake: FakeGitHub, store: Store) -> None:
    # the crash window: GitHub applied them, the record was never written
    n = fake.add_issue(REPO, "Crash", None, labels=["Bug"])["number"]
    publish(publisher, Labels(REPO, n, ("bug",), remove=("needs-triage",), key="triage"))
    assert changes(fake) == [] and names(fake, n) == ["Bug"]
    with store.session() as session:
        assert len(list(session.scalars(select(PublishedOutput)))) == 1


def test_a_label_removed_meanwhile_is_fine(publisher: GitHubPublisher, fake: FakeGitHub) -> None:
    n = fake.add_issue(REPO, "Crash", None, labels=["needs-triage"])["number"]
    fake.fail_next("DELETE", r"/labels/needs-triage$", 404, body={"message": "Label does not exist"})
    publish(publisher, Labels(REPO, n, (), remove=("needs-triage",), key="triage"))
    assert len(fake.calls("DELETE", r"/labels/needs-triage$")) == 1


def test_a_label_both_added_and_removed_is_kept(publisher: GitHubPublisher, fake: FakeGitHub) -> None:
    n = fake.add_issue(REPO, "Crash", None, labels=["bug"])["number"]
    publish(publisher, Labels(REPO, n, ("bug",), remove=("bug",), key="triage"))
    assert names(fake, n) == ["bug"] and changes(fake) == []


def test_dry_run_prints_the_labels() -> None:
    stream = io.StringIO()
    output = Labels(REPO, 7, ("bug", "area:cli"), remove=("needs-triage",), key="7")
    published = publish(DryRunPublisher(stream), output)
    printed = stream.getvalue()
    assert f"labels on {REPO}#7: +bug +area:cli -needs-triage" in printed
    assert marker(AGENT, "labels", "7") in printed
    assert published == [Published("labels", "7", None, None)]
