"""GitHubPublisher: real githubkit → fake GitHub on loopback, records in SQLite and PostgreSQL.

The `store` fixture (tests/conftest.py) runs every test on both databases; when
PostgreSQL is unreachable the postgres half fails, saying how to start it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from agents.events import Event
from agents.outputs import (
    Annotation,
    CheckRun,
    Comment,
    InlineComment,
    IssueReport,
    Output,
    Reaction,
    Report,
    Review,
    marker,
)
from agents.store.db import Store
from agents.store.tables import PublishedOutput
from bot.github import GitHubClients, github_clients
from bot.publish import DryRunPublisher, GitHubPublisher, Origin, PublishError
from bot.settings import Settings
from bot.wiring import make_publisher
from tests.fakes.github import FakeGitHub, app_private_key

REPO = "octo/repo"
AGENT = "wowvision"
INSTALLATION = 31
SHA = "a" * 40


@pytest.fixture(autouse=True)
def _no_ambient_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "GITHUB_TOKEN",
        "GITHUB_APP_ID",
        "GITHUB_APP_PRIVATE_KEY",
        "GITHUB_APP_PRIVATE_KEY_PATH",
        "GITHUB_API_URL",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake(fresh_github: FakeGitHub) -> FakeGitHub:
    return fresh_github


@pytest.fixture
def publisher(store: Store, fake: FakeGitHub) -> GitHubPublisher:
    settings = Settings(GITHUB_API_URL=fake.url, GITHUB_APP_ID=7, GITHUB_APP_PRIVATE_KEY=app_private_key())
    return GitHubPublisher(store, GitHubClients(settings, max_wait=0.01))


def event(delivery: str = "delivery-1", issue_number: int | None = 1) -> Event:
    payload: dict[str, Any] = {"installation": {"id": INSTALLATION}, "repository": {"full_name": REPO}}
    if issue_number is not None:
        payload["issue"] = {"number": issue_number}
    return Event.from_payload(delivery, "issue_comment", payload)


def publish(publisher: GitHubPublisher, *outputs: Output, delivery: str = "delivery-1") -> None:
    asyncio.run(publisher.publish(AGENT, outputs, Origin.of(event(delivery))))


def rows(store: Store) -> list[PublishedOutput]:
    with store.session() as session:
        return list(session.scalars(select(PublishedOutput).order_by(PublishedOutput.id)))


def writes(fake: FakeGitHub) -> list[tuple[str, str]]:
    return [
        (c.method, c.path) for c in fake.requests if c.method in ("POST", "PATCH") and "access_tokens" not in c.path
    ]


# ---------------------------------------------------------------- comments


def test_comment_is_created_once_then_edited_in_place(
    publisher: GitHubPublisher, fake: FakeGitHub, store: Store
) -> None:
    publish(publisher, Comment(REPO, 1, "first", key="summary"), delivery="d-1")
    publish(publisher, Comment(REPO, 1, "second", key="summary"), delivery="d-2")
    publish(publisher, Comment(REPO, 1, "second", key="summary"), delivery="d-3")  # unchanged: no call

    assert len(fake.comments) == 1
    (comment,) = fake.comments.values()
    hidden = marker(AGENT, "comment", "summary")
    assert comment["body"] == f"second\n\n{hidden}"
    assert writes(fake) == [
        ("POST", "/repos/octo/repo/issues/1/comments"),
        ("PATCH", f"/repos/octo/repo/issues/comments/{comment['id']}"),
    ]
    (row,) = rows(store)
    assert (row.marker, row.kind, row.repo, row.github_id) == (hidden, "comment", REPO, comment["id"])
    assert row.url == comment["html_url"] and row.delivery_id == "d-2" and len(row.content_hash) == 64
    assert len(fake.calls("POST", r"/access_tokens$")) == 1
    assert all(c.path.startswith("/app/") or c.headers["authorization"].startswith("token ghs_") for c in fake.requests)


def test_crash_window_comment_on_github_without_record_is_not_duplicated(
    publisher: GitHubPublisher, fake: FakeGitHub, store: Store
) -> None:
    hidden = marker(AGENT, "comment", "summary")
    for n in range(120):  # the marker sits on the second page
        fake.add_comment(REPO, 1, f"chatter {n}", user=fake.user("someone", 99))
    crashed = fake.add_comment(REPO, 1, f"old text\n\n{hidden}")

    publish(publisher, Comment(REPO, 1, "new text", key="summary"))

    assert len([c for c in fake.comments.values() if hidden in c["body"]]) == 1
    assert writes(fake) == [("PATCH", f"/repos/octo/repo/issues/comments/{crashed['id']}")]
    assert fake.comments[crashed["id"]]["body"] == f"new text\n\n{hidden}"
    assert [r.github_id for r in rows(store)] == [crashed["id"]]


def test_crash_window_with_same_text_only_records(publisher: GitHubPublisher, fake: FakeGitHub, store: Store) -> None:
    hidden = marker(AGENT, "comment", "k")
    crashed = fake.add_comment(REPO, 1, f"same\n\n{hidden}")
    publish(publisher, Comment(REPO, 1, "same", key="k"))
    assert writes(fake) == []
    assert [r.github_id for r in rows(store)] == [crashed["id"]]


def test_comment_deleted_on_github_is_posted_again(publisher: GitHubPublisher, fake: FakeGitHub, store: Store) -> None:
    publish(publisher, Comment(REPO, 1, "one", key="k"))
    fake.comments.clear()  # someone deleted it
    publish(publisher, Comment(REPO, 1, "two", key="k"))
    (comment,) = fake.comments.values()
    assert comment["body"].startswith("two")
    assert [r.github_id for r in rows(store)] == [comment["id"]]


def test_long_body_is_cut_and_keeps_its_marker(publisher: GitHubPublisher, fake: FakeGitHub) -> None:
    publish(publisher, Comment(REPO, 1, "x" * 70_000, key="long"))
    (comment,) = fake.comments.values()
    assert len(comment["body"]) <= 65_536
    assert comment["body"].endswith(marker(AGENT, "comment", "long"))


# ---------------------------------------------------------------- reactions


def test_reaction_is_posted_and_recorded_once(publisher: GitHubPublisher, fake: FakeGitHub, store: Store) -> None:
    publish(publisher, Reaction(REPO, "eyes", comment_id=555))
    publish(publisher, Reaction(REPO, "eyes", comment_id=555), delivery="d-2")
    publish(publisher, Reaction(REPO, "rocket", issue_number=1))

    assert writes(fake) == [
        ("POST", "/repos/octo/repo/issues/comments/555/reactions"),
        ("POST", "/repos/octo/repo/issues/1/reactions"),
    ]
    assert [r["content"] for r in fake.reactions] == ["eyes", "rocket"]
    assert [(r.kind, r.marker) for r in rows(store)] == [
        ("reaction", marker(AGENT, "reaction", "555:eyes")),
        ("reaction", marker(AGENT, "reaction", "issue-1:rocket")),
    ]


def test_reaction_already_on_github_is_fine(publisher: GitHubPublisher, fake: FakeGitHub, store: Store) -> None:
    publish(publisher, Reaction(REPO, "eyes", comment_id=9))
    with store.session() as session:  # lose the record: GitHub answers 200 the second time
        session.query(PublishedOutput).delete()
    publish(publisher, Reaction(REPO, "eyes", comment_id=9))
    assert [c.status for c in fake.calls("POST", r"/reactions$")] == [201, 200]
    assert len(fake.reactions) == 1 and len(rows(store)) == 1


# ---------------------------------------------------------------- issues


def test_issue_is_upserted_then_closed(publisher: GitHubPublisher, fake: FakeGitHub, store: Store) -> None:
    report = IssueReport(REPO, "Broken links", "3 broken", key="links", labels=("waooaw", "docs"))
    publish(publisher, report)
    publish(publisher, report, delivery="d-2")  # unchanged: nothing
    (issue,) = fake.issues.values()
    fake.issues[(REPO, issue["number"])]["labels"].append(fake._label(REPO, "triaged"))  # a human adds a label
    publish(publisher, IssueReport(REPO, "Broken links", "1 broken", key="links", labels=("waooaw", "docs")))
    publish(
        publisher,
        IssueReport(REPO, "Broken links", "all fixed", key="links", labels=("waooaw", "docs"), state="closed"),
    )

    assert len(fake.issues) == 1
    issue = fake.issues[(REPO, issue["number"])]
    assert issue["state"] == "closed" and issue["state_reason"] == "completed"
    assert issue["body"] == f"all fixed\n\n{marker(AGENT, 'issue', 'links')}"
    assert {label["name"] for label in issue["labels"]} == {"waooaw", "docs", "triaged"}
    assert [m for m, _ in writes(fake)] == ["POST", "PATCH", "PATCH"]
    assert fake.calls("POST", r"/issues$")[0].json["labels"] == ["waooaw", "docs"]
    (row,) = rows(store)
    assert (row.kind, row.github_id, row.url) == ("issue", issue["number"], issue["html_url"])


def test_crash_window_issue_found_by_marker(publisher: GitHubPublisher, fake: FakeGitHub, store: Store) -> None:
    hidden = marker(AGENT, "issue", "links")
    fake.add_issue(REPO, "unrelated", "hello", labels=["waooaw"])
    crashed = fake.add_issue(REPO, "Broken links", f"old\n\n{hidden}", labels=["waooaw"])
    fake.add_issue(REPO, "newer", "hi", labels=["waooaw"])

    publish(publisher, IssueReport(REPO, "Broken links", "new", key="links", labels=("waooaw",)))

    assert len(fake.issues) == 3
    assert writes(fake) == [("PATCH", f"/repos/octo/repo/issues/{crashed['number']}")]
    assert fake.calls("GET", r"/issues$")[0].query["labels"] == "waooaw"
    assert [r.github_id for r in rows(store)] == [crashed["number"]]


def test_closing_an_issue_that_never_existed_creates_nothing(publisher: GitHubPublisher, fake: FakeGitHub) -> None:
    publish(publisher, IssueReport(REPO, "t", "b", key="gone", state="closed"))
    assert fake.issues == {} and writes(fake) == []


def test_report_with_repo_upserts_an_issue_and_ignores_files(
    publisher: GitHubPublisher, fake: FakeGitHub, store: Store
) -> None:
    publish(
        publisher,
        Report(
            "Daily 2024-05-01",
            "# hi",
            key="daily:2024-05-01",
            repo=REPO,
            labels=("waooaw-report",),
            files={"reports/x.md": b"x"},
        ),
    )
    publish(publisher, Report("Daily", "# no repo", key="daily:none"))
    (issue,) = fake.issues.values()
    assert issue["title"] == "Daily 2024-05-01"
    assert issue["body"] == f"# hi\n\n{marker(AGENT, 'report', 'daily:2024-05-01')}"
    assert [label["name"] for label in issue["labels"]] == ["waooaw-report"]
    assert [r.kind for r in rows(store)] == ["report"]


# ---------------------------------------------------------------- reviews


def review(comments: Sequence[InlineComment], key: str = "review", sha: str = SHA) -> Review:
    return Review(REPO, 2, sha, "2 findings", key=key, event="REQUEST_CHANGES", comments=tuple(comments))


def test_review_with_inline_comments(publisher: GitHubPublisher, fake: FakeGitHub, store: Store) -> None:
    fake.valid_anchors = {("a.py", 3), ("b.py", 10)}
    publish(publisher, review([InlineComment("a.py", 3, "no"), InlineComment("b.py", 10, "span", start_line=8)]))
    publish(publisher, review([InlineComment("a.py", 3, "no")]), delivery="d-2")  # same SHA: nothing

    (posted,) = fake.reviews.values()
    assert posted["state"] == "CHANGES_REQUESTED" and posted["commit_id"] == SHA
    assert fake.review_comments[posted["id"]] == [
        {"path": "a.py", "line": 3, "side": "RIGHT", "body": "no"},
        {"path": "b.py", "line": 10, "side": "RIGHT", "body": "span", "start_line": 8, "start_side": "RIGHT"},
    ]
    assert len(fake.calls("POST", r"/reviews$")) == 1
    (row,) = rows(store)
    assert row.marker == marker(AGENT, "review", f"review@{SHA}") and row.github_id == posted["id"]


def test_new_head_sha_gets_a_new_review(publisher: GitHubPublisher, fake: FakeGitHub) -> None:
    publish(publisher, review([]))
    publish(publisher, review([], sha="b" * 40))
    assert sorted(r["commit_id"] for r in fake.reviews.values()) == [SHA, "b" * 40]


def test_crash_window_review_is_not_posted_twice(publisher: GitHubPublisher, fake: FakeGitHub, store: Store) -> None:
    publish(publisher, review([]))
    with store.session() as session:
        session.query(PublishedOutput).delete()
    publish(publisher, review([]))
    assert len(fake.reviews) == 1 and len(rows(store)) == 1


# ---------------------------------------------------------------- markers someone else pasted


def test_a_strangers_comment_carrying_our_marker_is_not_taken_for_ours(
    publisher: GitHubPublisher, fake: FakeGitHub, store: Store
) -> None:
    hidden = marker(AGENT, "comment", "summary")
    theirs = fake.add_comment(REPO, 1, f"gotcha\n\n{hidden}", user=fake.user("mallory", 666))
    publish(publisher, Comment(REPO, 1, "the real summary", key="summary"))
    ours = [c for c in fake.comments.values() if c["id"] != theirs["id"]]
    assert [c["body"] for c in ours] == [f"the real summary\n\n{hidden}"] and ours[0]["user"]["id"] == fake.bot["id"]
    assert fake.comments[theirs["id"]]["body"] == f"gotcha\n\n{hidden}"  # never edited
    assert [r.github_id for r in rows(store)] == [ours[0]["id"]]
    assert fake.calls("GET", r"/app$") and fake.calls("GET", r"/users/waooaw\[bot\]$")  # how the App learns its author


def test_a_strangers_issue_carrying_our_marker_is_not_taken_for_ours(
    publisher: GitHubPublisher, fake: FakeGitHub, store: Store
) -> None:
    hidden = marker(AGENT, "issue", "links")
    theirs = fake.add_issue(
        REPO, "Broken links", f"gotcha\n\n{hidden}", labels=["waooaw"], user=fake.user("mallory", 666)
    )
    publish(publisher, IssueReport(REPO, "Broken links", "the real report", key="links", labels=("waooaw",)))
    (ours,) = [i for i in fake.issues.values() if i["number"] != theirs["number"]]
    assert (
        ours["body"] == f"the real report\n\n{hidden}"
        and fake.issues[(REPO, theirs["number"])]["body"] == f"gotcha\n\n{hidden}"
    )


def test_a_strangers_review_carrying_our_marker_does_not_stand_for_ours(
    publisher: GitHubPublisher, fake: FakeGitHub
) -> None:
    hidden = marker(AGENT, "review", "review")
    fake.add_review(REPO, 2, f"gotcha\n\n{hidden}", "COMMENT", SHA, user=fake.user("mallory", 666))
    publish(publisher, review([]))
    assert sorted(r["user"]["login"] for r in fake.reviews.values()) == ["mallory", "waooaw[bot]"]


@pytest.mark.parametrize("kind", ["comment", "issue", "review"])
def test_our_own_body_quoting_a_marker_is_not_the_output_it_names(
    publisher: GitHubPublisher, fake: FakeGitHub, kind: str
) -> None:
    """A marker counts only where we put it, at the end of the body: one of ours that quotes a
    file named after another output's marker (a summary listing its path) is not that output."""
    hidden = marker(AGENT, kind, "help")
    quoting = f"`docs/{hidden}/models.py` has a finding\n\n{marker(AGENT, kind, 'summary')}"
    if kind == "comment":
        quoted = fake.add_comment(REPO, 1, quoting)
        publish(publisher, Comment(REPO, 1, "help", key="help"))
        assert fake.comments[quoted["id"]]["body"] == quoting and len(fake.comments) == 2
    elif kind == "issue":
        quoted = fake.add_issue(REPO, "Findings", quoting, labels=["waooaw"])
        publish(publisher, IssueReport(REPO, "Help", "help", key="help", labels=("waooaw",)))
        assert fake.issues[(REPO, quoted["number"])]["body"] == quoting and len(fake.issues) == 2
    else:
        fake.add_review(REPO, 2, quoting, "COMMENT", SHA, user=fake.bot)
        publish(publisher, Review(REPO, 2, SHA, "the review", key="help"))
        assert sorted(r["body"] for r in fake.reviews.values()) == sorted([quoting, f"the review\n\n{hidden}"])


def test_an_issue_recorded_in_one_repository_is_not_edited_in_another(
    publisher: GitHubPublisher, fake: FakeGitHub, store: Store
) -> None:
    """Issue numbers are per repository: the same marker's record in octo/repo says nothing of octo/other."""
    report = IssueReport(REPO, "WowVision: rule x", "a finding", key="rule:x", labels=("wowvision",))
    publish(publisher, report)
    human = fake.add_issue("octo/other", "Login page broken", "steps to reproduce", user=fake.user("alice", 5))
    publish(publisher, IssueReport("octo/other", report.title, "a finding there", key=report.key, labels=report.labels))
    publish(
        publisher, IssueReport("octo/other", report.title, "", key=report.key, labels=report.labels, state="closed")
    )
    assert human["number"] == 1 and (human["title"], human["body"], human["state"]) == (
        "Login page broken",
        "steps to reproduce",
        "open",
    )
    theirs = fake.issues[("octo/other", 2)]
    assert theirs["title"] == report.title and theirs["state"] == "closed"
    assert fake.issues[(REPO, 1)]["state"] == "open"
    assert sorted((r.installation_id, r.repo, r.github_id) for r in rows(store)) == [
        (INSTALLATION, "octo/other", 2),
        (INSTALLATION, REPO, 1),
    ]


def test_the_same_answer_in_two_repositories_is_posted_in_both(publisher: GitHubPublisher, fake: FakeGitHub) -> None:
    for repo in (REPO, "octo/other"):
        publish(publisher, Comment(repo, 40, "### WAOOAW — what you can ask here", key="help:40"))
    assert sorted(c["issue_url"].split("/repos/")[1] for c in fake.comments.values()) == [
        "octo/other/issues/40",
        "octo/repo/issues/40",
    ]


def test_with_a_personal_token_our_author_is_the_tokens_user(store: Store, fake: FakeGitHub) -> None:
    settings = Settings(GITHUB_API_URL=fake.url, GITHUB_TOKEN="github_pat_test")
    with_token = GitHubPublisher(store, GitHubClients(settings, max_wait=0.01))
    hidden = marker(AGENT, "comment", "k")
    fake.add_comment(REPO, 1, f"gotcha\n\n{hidden}", user=fake.user("mallory", 666))
    crashed = fake.add_comment(REPO, 1, f"old\n\n{hidden}")  # ours, from a run that died before recording it
    publish(with_token, Comment(REPO, 1, "new", key="k"))
    assert writes(fake) == [("PATCH", f"/repos/octo/repo/issues/comments/{crashed['id']}")]
    assert fake.calls("GET", r"/user$")


def test_where_our_author_cannot_be_learnt_the_marker_decides(store: Store, fake: FakeGitHub) -> None:
    """An installation token given as GITHUB_TOKEN (as on Actions) may not read /user."""
    settings = Settings(GITHUB_API_URL=fake.url, GITHUB_TOKEN="ghs_actions")
    with_token = GitHubPublisher(store, GitHubClients(settings, max_wait=0.01))
    hidden = marker(AGENT, "comment", "k")
    crashed = fake.add_comment(REPO, 1, f"old\n\n{hidden}")
    publish(with_token, Comment(REPO, 1, "new", key="k"))
    assert writes(fake) == [("PATCH", f"/repos/octo/repo/issues/comments/{crashed['id']}")]
    assert fake.calls("GET", r"/user$")[0].status == 403


# ---------------------------------------------------------------- check runs


def many_annotations(n: int) -> tuple[Annotation, ...]:
    return tuple(Annotation("a.py", i + 1, i + 1, "warning", f"finding {i}", title="rule") for i in range(n))


def test_check_run_annotations_go_in_batches_of_50(publisher: GitHubPublisher, fake: FakeGitHub, store: Store) -> None:
    run = CheckRun(
        REPO, SHA, "WowVision", "120 findings", "summary", conclusion="failure", annotations=many_annotations(120)
    )
    publish(publisher, run)

    create, *updates = [c for c in fake.requests if "check-runs" in c.path and c.method in ("POST", "PATCH")]
    assert create.method == "POST" and len(create.json["output"]["annotations"]) == 50
    assert create.json["status"] == "in_progress" and "conclusion" not in create.json
    assert [len(u.json["output"]["annotations"]) for u in updates] == [50, 20]
    assert [u.json.get("conclusion") for u in updates] == [None, "failure"]
    (check,) = fake.check_runs.values()
    assert (check["status"], check["conclusion"]) == ("completed", "failure")
    assert len(fake.annotations[check["id"]]) == 120
    assert fake.annotations[check["id"]][0] == {
        "path": "a.py",
        "start_line": 1,
        "end_line": 1,
        "annotation_level": "warning",
        "message": "finding 0",
        "title": "rule",
    }
    assert check["output"]["summary"].endswith(marker(AGENT, "check_run", f"{SHA}:WowVision"))
    assert [r.github_id for r in rows(store)] == [check["id"]]


def test_check_run_is_updated_in_place_without_resending_annotations(
    publisher: GitHubPublisher, fake: FakeGitHub
) -> None:
    publish(
        publisher, CheckRun(REPO, SHA, "WowVision", "t", "s", conclusion="failure", annotations=many_annotations(3))
    )
    publish(
        publisher, CheckRun(REPO, SHA, "WowVision", "t", "s", conclusion="failure", annotations=many_annotations(3))
    )
    publish(
        publisher, CheckRun(REPO, SHA, "WowVision", "t", "s2", conclusion="success", annotations=many_annotations(3))
    )

    assert len(fake.check_runs) == 1
    (check,) = fake.check_runs.values()
    assert check["conclusion"] == "success" and len(fake.annotations[check["id"]]) == 3
    create, update = [c for c in fake.requests if "check-runs" in c.path and c.method in ("POST", "PATCH")]
    assert create.json["status"] == "completed" and create.json["conclusion"] == "failure"
    assert update.method == "PATCH" and "annotations" not in update.json["output"]


def test_check_run_without_conclusion_is_in_progress(publisher: GitHubPublisher, fake: FakeGitHub) -> None:
    publish(publisher, CheckRun(REPO, SHA, "WowVision", "t", "running"))
    (check,) = fake.check_runs.values()
    assert check["status"] == "in_progress" and check["conclusion"] is None


def test_crash_window_check_run_found_by_external_id(
    publisher: GitHubPublisher, fake: FakeGitHub, store: Store
) -> None:
    publish(publisher, CheckRun(REPO, SHA, "WowVision", "t", "s", conclusion="neutral"))
    with store.session() as session:
        session.query(PublishedOutput).delete()
    publish(publisher, CheckRun(REPO, SHA, "WowVision", "t", "s", conclusion="success"))
    (check,) = fake.check_runs.values()
    assert check["conclusion"] == "success"


def test_another_apps_check_run_with_our_name_and_id_is_left_alone(
    publisher: GitHubPublisher, fake: FakeGitHub
) -> None:
    external_id = f"waooaw:{AGENT}:{SHA}:WowVision"  # predictable: agent, head SHA, check name
    theirs = fake.add_check_run(
        REPO, {"name": "WowVision", "head_sha": SHA, "external_id": external_id, "conclusion": "failure"}, app_id=99
    )
    publish(publisher, CheckRun(REPO, SHA, "WowVision", "t", "s", conclusion="success"))
    (ours,) = [run for run in fake.check_runs.values() if run["id"] != theirs["id"]]
    assert ours["external_id"] == external_id and ours["conclusion"] == "success" and ours["app"]["id"] == 7
    assert fake.check_runs[theirs["id"]]["conclusion"] == "failure"  # never touched
    assert fake.calls("GET", r"/check-runs$")[0].query["app_id"] == "7"


# ---------------------------------------------------------------- failures and races


def test_one_failing_output_does_not_stop_the_others(publisher: GitHubPublisher, fake: FakeGitHub) -> None:
    fake.fail_next("POST", r"/issues/1/comments$", 404)
    with pytest.raises(PublishError) as raised:
        publish(publisher, Comment(REPO, 1, "a", key="a"), Reaction(REPO, "eyes", comment_id=1))
    assert [o.kind for o, _ in raised.value.errors] == ["comment"]
    assert len(fake.reactions) == 1


def test_server_error_while_publishing_is_retried(publisher: GitHubPublisher, fake: FakeGitHub) -> None:
    fake.fail_next("POST", r"/issues/1/comments$", 502)
    publish(publisher, Comment(REPO, 1, "a", key="a"))
    assert [c.status for c in fake.calls("POST", r"/comments$")] == [502, 201]
    assert len(fake.comments) == 1


def test_two_workers_recording_the_same_marker(publisher: GitHubPublisher, fake: FakeGitHub, store: Store) -> None:
    """Another worker records the same key between our read and our write: we update its row."""
    hidden = marker(AGENT, "comment", "race")
    rivals: list[str] = []

    def rival_inserts(connection: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO published_outputs") and not rivals:
            rivals.append(hidden)
            with Session(store.engine) as rival, rival.begin():
                rival.add(
                    PublishedOutput(
                        installation_id=INSTALLATION, marker=hidden, agent=AGENT, kind="comment", repo=REPO, github_id=1
                    )
                )

    sa_event.listen(store.engine, "before_cursor_execute", rival_inserts)
    try:
        publish(publisher, Comment(REPO, 1, "mine", key="race"))
    finally:
        sa_event.remove(store.engine, "before_cursor_execute", rival_inserts)

    assert rivals == [hidden]
    (comment,) = fake.comments.values()
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(PublishedOutput)) == 1
    (row,) = rows(store)
    assert (row.marker, row.github_id, row.delivery_id) == (hidden, comment["id"], "delivery-1")


def test_without_credentials_the_publisher_is_a_dry_run(store: Store) -> None:
    assert isinstance(make_publisher(store, github_clients(Settings())), DryRunPublisher)
    assert isinstance(make_publisher(store, github_clients(Settings(GITHUB_TOKEN="t"))), GitHubPublisher)


# ---------------------------------------------------------------- a comment that closes its issue


def test_a_closing_comment_is_posted_then_closes_its_issue_once(
    publisher: GitHubPublisher, fake: FakeGitHub, store: Store
) -> None:
    lead = fake.add_issue(REPO, "A stale lead", "hello")
    note = Comment(REPO, lead["number"], "Closing: no news for 30 days.", key="stale", close=True)
    publish(publisher, note, delivery="d-1")

    assert (lead["state"], lead["state_reason"]) == ("closed", "not_planned")
    (comment,) = fake.comments.values()
    assert comment["body"].startswith("Closing: no news for 30 days.")
    assert writes(fake) == [
        ("POST", f"/repos/octo/repo/issues/{lead['number']}/comments"),
        ("PATCH", f"/repos/octo/repo/issues/{lead['number']}"),
    ]
    # published again (a redelivery, next week's run): nothing more, and a maintainer who reopened it is heard
    fake.issues[(REPO, lead["number"])]["state"] = "open"
    publish(publisher, note, delivery="d-2")
    assert len(writes(fake)) == 2 and lead["state"] == "open"
    assert len(rows(store)) == 1


def test_a_closing_comment_on_a_closed_issue_changes_nothing_but_the_comment(
    publisher: GitHubPublisher, fake: FakeGitHub
) -> None:
    lead = fake.add_issue(REPO, "A lead closed already", "hello", state="closed")
    publish(publisher, Comment(REPO, lead["number"], "Closing.", key="stale", close=True))
    assert writes(fake) == [("POST", f"/repos/octo/repo/issues/{lead['number']}/comments")]


def test_a_comment_never_closes_a_pull_request(publisher: GitHubPublisher, fake: FakeGitHub) -> None:
    pull = fake.add_pull(REPO, "feature", fake.default_branch, "A pull request", None)
    with pytest.raises(PublishError) as refused:
        publish(publisher, Comment(REPO, pull["number"], "Closing.", key="stale", close=True))
    assert "a pull request: refused" in str(refused.value.errors[0][1])
    assert writes(fake) == [] and pull["state"] == "open"
