"""GitHubPublisher's pull requests and workflow dispatches: real githubkit → fake GitHub.

The fixtures come from test_publisher.py, so every store-backed test here also runs on
both SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import io

import pytest

from agents.outputs import Comment, IssueReport, Output, PullRequest, WorkflowDispatch, marker
from agents.store.db import Store
from agents.store.tables import PublishedOutput
from bot.publish import DryRunPublisher, GitHubPublisher, Origin, Published, PublishError
from tests.fakes.github import FakeGitHub
from tests.integration.test_publisher import (  # noqa: F401 - fixtures
    AGENT,
    REPO,
    _no_ambient_credentials,
    event,
    fake,
    publisher,
    rows,
)

BRANCH = "waooaw/domain-x"
SPEC = "# Domain X\n"
SPEC_YAML = "name: x\nphases: 3\n"


def publish(
    publisher: GitHubPublisher | DryRunPublisher, *outputs: Output, delivery: str = "delivery-1"
) -> list[Published]:
    return asyncio.run(publisher.publish(AGENT, outputs, Origin.of(event(delivery))))


def pull_request(body: str = "The spec for X", spec: str = SPEC, base: str | None = "main") -> PullRequest:
    return PullRequest(
        REPO,
        BRANCH,
        "Onboard domain X",
        body,
        key="domain:x",
        base=base,
        files={"domains/x/spec.md": spec, "domains/x/spec.yaml": SPEC_YAML},
        commit_message="Add the spec of domain X",
    )


def forget_records(store: Store) -> None:
    """The crash window: GitHub holds what we made, our record of it is gone."""
    with store.session() as session:
        session.query(PublishedOutput).delete()


# ---------------------------------------------------------------- pull requests


def test_pull_request_is_opened_once_with_its_files_on_a_new_branch(
    publisher: GitHubPublisher, fake: FakeGitHub, store: Store
) -> None:
    main_sha = fake.heads(REPO)["main"]
    (published,) = publish(publisher, pull_request())

    assert fake.calls("POST", r"/git/refs$")[0].json == {"ref": f"refs/heads/{BRANCH}", "sha": main_sha}
    assert [(c["branch"], c["path"], c["message"]) for c in fake.commits] == [
        (BRANCH, "domains/x/spec.md", "Add the spec of domain X"),
        (BRANCH, "domains/x/spec.yaml", "Add the spec of domain X"),
    ]
    assert fake.files[(REPO, BRANCH, "domains/x/spec.md")] == SPEC.encode()
    assert fake.files[(REPO, BRANCH, "domains/x/spec.yaml")] == SPEC_YAML.encode()
    assert fake.heads(REPO)[BRANCH] == fake.commits[-1]["sha"]
    (pull,) = fake.pull_requests
    assert (pull["head"]["ref"], pull["base"]["ref"], pull["title"]) == (BRANCH, "main", "Onboard domain X")
    assert pull["body"] == f"The spec for X\n\n{marker(AGENT, 'pull_request', 'domain:x')}"
    assert published == Published("pull_request", "domain:x", pull["number"], pull["html_url"])
    (row,) = rows(store)
    assert (row.kind, row.github_id, row.url) == ("pull_request", pull["number"], pull["html_url"])

    before = len(fake.requests)
    assert publish(publisher, pull_request(), delivery="d-2") == [published]
    assert len(fake.commits) == 2 and len(fake.pull_requests) == 1
    assert len(fake.requests) == before, "an unchanged intent makes no call at all"


def test_changed_file_is_one_new_commit_and_the_body_is_edited_in_place(
    publisher: GitHubPublisher, fake: FakeGitHub
) -> None:
    publish(publisher, pull_request())
    old_blob = fake.commits[0]
    publish(publisher, pull_request(spec="# Domain X, revised\n"), delivery="d-2")  # files only: no PR call
    (new_commit,) = fake.commits[2:]
    assert new_commit["path"] == "domains/x/spec.md" and new_commit["content"] == b"# Domain X, revised\n"
    put = fake.calls("PUT", r"/contents/domains/x/spec\.md$")[-1]
    assert put.json["sha"] != old_blob["sha"] and put.json["branch"] == BRANCH
    assert not fake.calls("PATCH", r"/pulls/\d+$")

    publish(
        publisher, pull_request(body="The spec for X, now with phases", spec="# Domain X, revised\n"), delivery="d-3"
    )
    assert len(fake.commits) == 3
    (pull,) = fake.pull_requests
    (patch,) = fake.calls("PATCH", r"/pulls/\d+$")
    assert patch.path == f"/repos/octo/repo/pulls/{pull['number']}"
    assert pull["body"].startswith("The spec for X, now with phases\n\n<!-- waooaw:")
    assert len(fake.calls("POST", r"/pulls$")) == 1


def test_crash_window_pull_request_is_found_by_its_branch(
    publisher: GitHubPublisher, fake: FakeGitHub, store: Store
) -> None:
    publish(publisher, pull_request())
    forget_records(store)
    publish(publisher, pull_request(body="edited after the crash"), delivery="d-2")

    (pull,) = fake.pull_requests
    assert fake.calls("GET", r"/pulls$")[-1].query == {"head": f"octo:{BRANCH}", "state": "open", "per_page": "100"}
    assert len(fake.calls("POST", r"/pulls$")) == 1 and len(fake.commits) == 2
    assert pull["body"].startswith("edited after the crash")
    assert [r.github_id for r in rows(store)] == [pull["number"]]


def test_pull_request_opened_by_someone_else_for_the_branch_is_taken_over(
    publisher: GitHubPublisher, fake: FakeGitHub, store: Store
) -> None:
    hidden = marker(AGENT, "pull_request", "domain:x")
    seeded = fake.add_pull(REPO, BRANCH, "main", "Onboard domain X", f"The spec for X\n\n{hidden}")
    publish(publisher, pull_request())
    assert fake.pull_requests == [seeded] and not fake.calls("POST", r"/pulls$")
    assert not fake.calls("PATCH", r"/pulls/\d+$"), "title and body were already right"
    assert not fake.calls("POST", r"/git/refs$") and len(fake.commits) == 2
    assert [r.github_id for r in rows(store)] == [seeded["number"]]


def test_base_none_is_the_default_branch_and_unchanged_files_are_not_committed(
    publisher: GitHubPublisher, fake: FakeGitHub
) -> None:
    fake.default_branch = "trunk"
    fake.files[(REPO, "trunk", "domains/x/spec.yaml")] = SPEC_YAML.encode()
    publish(publisher, pull_request(base=None))

    assert len(fake.calls("GET", r"^/repos/octo/repo$")) == 1
    assert fake.calls("POST", r"/git/refs$")[0].json["sha"] == fake.heads(REPO)["trunk"]
    assert [c["path"] for c in fake.commits] == ["domains/x/spec.md"], "spec.yaml came with the branch"
    (pull,) = fake.pull_requests
    assert pull["base"]["ref"] == "trunk"


def test_branch_created_by_another_worker_meanwhile_is_fine(publisher: GitHubPublisher, fake: FakeGitHub) -> None:
    fake.heads(REPO)[BRANCH] = fake.heads(REPO)["main"]  # there already, but our look misses it
    fake.fail_next("GET", rf"/git/ref/heads/{BRANCH}$", 404)
    publish(publisher, pull_request())
    assert [c.status for c in fake.calls("POST", r"/git/refs$")] == [422]
    assert len(fake.pull_requests) == 1 and len(fake.commits) == 2


def test_failed_commit_is_reported_and_the_next_publish_finishes_the_job(
    publisher: GitHubPublisher, fake: FakeGitHub, store: Store
) -> None:
    fake.fail_next("PUT", r"/contents/domains/x/spec\.yaml$", 403)
    with pytest.raises(PublishError) as raised:
        publish(publisher, pull_request())
    assert [o.kind for o, _ in raised.value.errors] == ["pull_request"]
    assert len(fake.commits) == 1 and fake.pull_requests == [] and rows(store) == []

    publish(publisher, pull_request(), delivery="d-2")
    assert [c["path"] for c in fake.commits] == ["domains/x/spec.md", "domains/x/spec.yaml"]
    assert len(fake.pull_requests) == 1 and len(fake.calls("POST", r"/git/refs$")) == 1


# ---------------------------------------------------------------- workflow dispatches


def test_workflow_is_dispatched_once_per_key(publisher: GitHubPublisher, fake: FakeGitHub, store: Store) -> None:
    fake.heads(REPO)["release"] = "b" * 40
    job = WorkflowDispatch(REPO, "waooaw-coe.yml", key="job-1", inputs={"domain": "x", "depth": "quick"})
    assert publish(publisher, job) == [Published("workflow_dispatch", "job-1", None, None)]
    publish(publisher, job, delivery="d-2")  # redelivered: nothing is sent
    publish(publisher, WorkflowDispatch(REPO, "waooaw-coe.yml", key="job-2", ref="release"))

    assert fake.dispatches == [
        {"repo": REPO, "workflow": "waooaw-coe.yml", "ref": "main", "inputs": {"domain": "x", "depth": "quick"}},
        {"repo": REPO, "workflow": "waooaw-coe.yml", "ref": "release", "inputs": {}},
    ]
    assert [c.status for c in fake.calls("POST", r"/dispatches$")] == [204, 204]
    assert [(r.kind, r.marker, r.github_id) for r in rows(store)] == [
        ("workflow_dispatch", marker(AGENT, "workflow_dispatch", "job-1"), None),
        ("workflow_dispatch", marker(AGENT, "workflow_dispatch", "job-2"), None),
    ]


# ---------------------------------------------------------------- what publish answers


def test_publish_answers_one_entry_per_output_in_order(publisher: GitHubPublisher, fake: FakeGitHub) -> None:
    outputs = (Comment(REPO, 1, "hello", key="c"), pull_request(), IssueReport(REPO, "t", "b", key="i"))
    first = publish(publisher, *outputs)
    (comment,), (pull,), (issue,) = fake.comments.values(), fake.pull_requests, fake.issues.values()
    assert first == [
        Published("comment", "c", comment["id"], comment["html_url"]),
        Published("pull_request", "domain:x", pull["number"], pull["html_url"]),
        Published("issue", "i", issue["number"], issue["html_url"]),
    ]
    assert publish(publisher, *outputs, delivery="d-2") == first  # unchanged: from the record


def test_dry_run_prints_pull_requests_and_dispatches() -> None:
    stream = io.StringIO()
    dispatch = WorkflowDispatch(REPO, "waooaw-coe.yml", key="job-1", inputs={"domain": "x"})
    published = publish(DryRunPublisher(stream), pull_request(base=None), dispatch)

    text = stream.getvalue()
    assert f"pull request in {REPO} ({BRANCH} → the default branch): Onboard domain X" in text
    assert (
        f"domains/x/spec.md ({len(SPEC):,} bytes)" in text and f"domains/x/spec.yaml ({len(SPEC_YAML):,} bytes)" in text
    )
    assert f"workflow dispatch of waooaw-coe.yml in {REPO} at the default branch ━" in text
    assert "\n  domain = 'x'\n" in text
    assert published == [
        Published("pull_request", "domain:x", None, None),
        Published("workflow_dispatch", "job-1", None, None),
    ]


def test_dry_run_shows_terminal_controls_escaped_never_acted_on() -> None:
    # A comment quotes outside text; printed raw, an escape sequence would drive the operator's terminal.
    stream = io.StringIO()
    publish(DryRunPublisher(stream), Comment(REPO, 1, "before\x1b[2J\x1b]0;pwned\x07after\r\nnext line", key="c"))
    text = stream.getvalue()
    assert "\x1b" not in text and "\x07" not in text
    assert "before\\x1b[2J\\x1b]0;pwned\\x07after\nnext line\n" in text
