"""What a spec agent reads (GitHubReader's reads): the real githubkit client against the fake GitHub.

githubkit validates every answer it parses against GitHub's schema, so each test also
shows the fake answers complete objects; the shapes asserted are the factory's contract.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agents.events import Event
from agents.factory.reads import gather_reads
from agents.factory.spec import load_spec
from bot.github import GitHubClients
from bot.ratelimit import GitHubRateLimited
from bot.reader import GitHubReader, search_words
from tests.fakes.github import FakeGitHub
from tests.helpers import make_settings

REPO = "octo/repo"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SPECS = Path(__file__).resolve().parents[2] / "agents/specs"


@pytest.fixture
def fake(fresh_github: FakeGitHub) -> FakeGitHub:
    return fresh_github


@pytest.fixture
def reader(fake: FakeGitHub) -> GitHubReader:
    clients = GitHubClients(make_settings(GITHUB_TOKEN="ghs_test", GITHUB_API_URL=fake.url), max_wait=0.01)
    return GitHubReader(clients, installation_id=None)


def test_an_issue_with_its_last_30_comments(fake: FakeGitHub, reader: GitHubReader) -> None:
    reporter = fake.user("reporter", 501)
    issue = fake.add_issue(REPO, "Crash on start", "It crashes.", labels=["bug"], user=reporter)
    for n in range(35):
        fake.add_comment(REPO, issue["number"], f"comment {n}", user=fake.user(f"user{n}", 600 + n))
    issue["comments"] = 35

    got = asyncio.run(reader.issue_with_comments(REPO, issue["number"]))

    assert {key: got[key] for key in ("number", "title", "body", "user", "labels", "state")} == {
        "number": issue["number"],
        "title": "Crash on start",
        "body": "It crashes.",
        "user": "reporter",
        "labels": ["bug"],
        "state": "open",
    }
    assert got["url"] == f"https://github.com/{REPO}/issues/{issue['number']}"
    assert [c["body"] for c in got["comments"]] == [f"comment {n}" for n in range(5, 35)]
    assert got["comments"][-1] == {"user": "user34", "body": "comment 34"}
    # the last page and the one before it, of 30: never every comment of a long thread
    assert [c.query["page"] for c in fake.calls("GET", r"/issues/\d+/comments$")] == ["1", "2"]


def test_an_issue_without_comments_reads_no_comment_page(fake: FakeGitHub, reader: GitHubReader) -> None:
    issue = fake.add_issue(REPO, "Question", None)
    got = asyncio.run(reader.issue_with_comments(REPO, issue["number"]))
    assert got["body"] == "" and got["comments"] == []
    assert fake.calls("GET", r"/comments$") == []


def test_a_pull_request_reads_as_an_issue(fake: FakeGitHub, reader: GitHubReader) -> None:
    pull = fake.add_pull(REPO, "feature", "main", "Add a feature", "Body")
    got = asyncio.run(reader.issue_with_comments(REPO, pull["number"]))
    assert (got["number"], got["title"], got["user"]) == (pull["number"], "Add a feature", "waooaw[bot]")


def test_default_branch_files_by_glob_capped_and_read_conditionally(fake: FakeGitHub, reader: GitHubReader) -> None:
    files = {
        "README.md": b"# Project\n",
        "docs/guide.md": b"Guide\n",
        "docs/api/index.md": b"API\n",
        "docs/big.md": b"x" * 2000,
        "docs/logo.md": b"\x89PNG\x00binary",
        "src/app.py": b"print()\n",
    }
    for path, content in files.items():
        fake.files[(REPO, "main", path)] = content
    fake.files[(REPO, "other", "docs/elsewhere.md")] = b"not on the default branch"

    got = asyncio.run(reader.default_branch_files(REPO, ["docs/**", "README.md"], 1000, 20))
    # sorted by path; too large and binary files left out; nothing from another branch
    assert got == {"README.md": "# Project\n", "docs/api/index.md": "API\n", "docs/guide.md": "Guide\n"}
    assert not fake.calls("GET", r"/contents/docs/big\.md$")  # its size in the tree was enough

    assert list(asyncio.run(reader.default_branch_files(REPO, ["*.md"], 1000, 2))) == [
        "README.md",
        "docs/api/index.md",
    ]

    fake.requests.clear()
    again = asyncio.run(reader.default_branch_files(REPO, ["docs/**", "README.md"], 1000, 20))
    assert again == got
    tree_calls = fake.calls("GET", r"/git/trees/main$")
    assert tree_calls[0].query == {"recursive": "1"} and tree_calls[0].status == 304
    assert {c.status for c in fake.calls("GET", r"/contents/")} == {304}


def test_default_branch_files_of_an_empty_match(fake: FakeGitHub, reader: GitHubReader) -> None:
    fake.files[(REPO, "main", "src/app.py")] = b"print()\n"
    assert asyncio.run(reader.default_branch_files(REPO, ["docs/**"], 1000, 20)) == {}


def test_default_branch_files_of_an_empty_repository(fake: FakeGitHub, reader: GitHubReader) -> None:
    fake.fail_next("GET", r"/git/trees/main$", 409, body={"message": "Git Repository is empty."})
    assert asyncio.run(reader.default_branch_files(REPO, ["**"], 1000, 20)) == {}


def test_search_issues_finds_similar_ones_and_excludes_the_event_issue(fake: FakeGitHub, reader: GitHubReader) -> None:
    event_issue = fake.add_issue(REPO, "Crash when the config file is missing", None)
    duplicate = fake.add_issue(REPO, "Crash: missing config", "same here", state="closed")
    related = fake.add_issue(REPO, "Config docs", "where does the config file go?")
    fake.add_issue(REPO, "Unrelated", "colour of the logo")
    fake.add_issue("octo/other", "Crash when the config file is missing", None)

    got = asyncio.run(reader.search_issues(REPO, event_issue["title"], 5, "all", exclude=[event_issue["number"]]))

    assert [found["number"] for found in got] == [duplicate["number"], related["number"]]
    assert got[0] == {
        "number": duplicate["number"],
        "title": "Crash: missing config",
        "state": "closed",
        "url": f"https://github.com/{REPO}/issues/{duplicate['number']}",
    }
    query = fake.searches[-1]
    assert query.startswith(f"repo:{REPO} is:issue ") and " OR " in query

    open_only = asyncio.run(reader.search_issues(REPO, event_issue["title"], 1, "open"))
    assert [found["number"] for found in open_only] == [event_issue["number"]]
    assert "is:open" in fake.searches[-1]


def test_a_search_refused_for_its_rate_pauses_searches_only(fake: FakeGitHub) -> None:
    settings = make_settings(GITHUB_TOKEN="ghs_test", GITHUB_API_URL=fake.url, WAOOAW_GITHUB_WAIT_BUDGET=5)
    reader = GitHubReader(GitHubClients(settings, max_wait=0.01), installation_id=None)
    fake.add_issue(REPO, "Crash on start", None)
    fake.add_repo_label(REPO, "bug")
    reset = datetime.now(UTC) + timedelta(minutes=10)
    limited = {"x-ratelimit-resource": "search", "x-ratelimit-remaining": "0", "x-ratelimit-reset": f"{reset:%s}"}
    fake.fail_next("GET", r"^/search/issues$", 403, headers=limited, body={"message": "API rate limit exceeded"})

    with pytest.raises(GitHubRateLimited) as refused:
        asyncio.run(reader.search_issues(REPO, "crash", 5, "all"))
    assert refused.value.key.endswith(":search") and refused.value.retry_after > 500
    assert asyncio.run(reader.labels(REPO)) == ["bug"]  # the installation's other calls go on at once
    with pytest.raises(GitHubRateLimited):  # and its searches wait for the reset, unsent
        asyncio.run(reader.search_issues(REPO, "crash", 5, "all"))
    assert len(fake.calls("GET", r"^/search/issues$")) == 1


def test_search_words_are_plain_terms(fake: FakeGitHub, reader: GitHubReader) -> None:
    # a title cannot smuggle a qualifier into the query
    assert search_words('Bug label:secret repo:evil/x "quoted"') == ["bug", "label", "secret", "repo", "evil", "quoted"]
    assert search_words("a an of") == []
    assert asyncio.run(reader.search_issues(REPO, "?!", 5, "all")) == []
    assert fake.searches == []


def test_labels_of_the_repository(fake: FakeGitHub, reader: GitHubReader) -> None:
    for name in ("bug", "enhancement", "question"):
        fake.add_repo_label(REPO, name)
    fake.add_repo_label("octo/other", "elsewhere")
    assert asyncio.run(reader.labels(REPO)) == ["bug", "enhancement", "question"]


def test_labels_are_paged(fake: FakeGitHub, reader: GitHubReader) -> None:
    for n in range(130):
        fake.add_repo_label(REPO, f"label-{n}")
    assert asyncio.run(reader.labels(REPO)) == [f"label-{n}" for n in range(130)]
    assert len(fake.calls("GET", r"/labels$")) == 2


def test_releases_newest_first_without_drafts(fake: FakeGitHub, reader: GitHubReader) -> None:
    fake.add_release(REPO, "v1.0.0", name="One", body="first", published_at=T0)
    fake.add_release(REPO, "v1.1.0", body="second", published_at=T0 + timedelta(days=10))
    fake.add_release(REPO, "v2.0.0-draft", draft=True)
    fake.add_release("octo/other", "v9.0.0")

    got = asyncio.run(reader.releases(REPO, 5))

    assert got == [
        {
            "tag": "v1.1.0",
            "name": "v1.1.0",
            "published_at": "2024-05-11T12:00:00Z",
            "url": f"https://github.com/{REPO}/releases/tag/v1.1.0",
            "body": "second",
        },
        {
            "tag": "v1.0.0",
            "name": "One",
            "published_at": "2024-05-01T12:00:00Z",
            "url": f"https://github.com/{REPO}/releases/tag/v1.0.0",
            "body": "first",
        },
    ]
    assert [r["tag"] for r in asyncio.run(reader.releases(REPO, 1))] == ["v1.1.0"]


def _merged(fake: FakeGitHub, title: str, at: datetime, *, labels: tuple[str, ...] = ()) -> int:
    pull = fake.add_pull(REPO, title.lower().replace(" ", "-"), "main", title, None)
    pull["labels"] = [fake._label(REPO, name) for name in labels]
    fake.merge_pull(REPO, pull["number"], at)
    return int(pull["number"])


def test_merged_pulls_since_the_latest_release(fake: FakeGitHub, reader: GitHubReader) -> None:
    before = _merged(fake, "Old change", T0 - timedelta(days=2))
    fake.add_release(REPO, "v1.0.0", published_at=T0)
    first = _merged(fake, "First change", T0 + timedelta(days=1), labels=("feature",))
    second = _merged(fake, "Second change", T0 + timedelta(days=2))
    closed = fake.add_pull(REPO, "abandoned", "main", "Abandoned", None)
    closed.update(state="closed", updated_at="2024-05-05T00:00:00Z")
    fake.add_pull(REPO, "open", "main", "Still open", None)

    got = asyncio.run(reader.merged_pulls_since_release(REPO, 50))

    assert [p["number"] for p in got] == [second, first]
    assert got[1] == {
        "number": first,
        "title": "First change",
        "user": "waooaw[bot]",
        "merged_at": "2024-05-02T12:00:00Z",
        "url": f"https://github.com/{REPO}/pull/{first}",
        "labels": ["feature"],
    }
    assert before not in [p["number"] for p in got]
    call = fake.calls("GET", rf"/repos/{REPO}/pulls$")[0]
    assert (call.query["state"], call.query["sort"], call.query["direction"]) == ("closed", "updated", "desc")


def test_merged_pulls_of_a_release_are_those_between_it_and_the_one_before(
    fake: FakeGitHub, reader: GitHubReader
) -> None:
    _merged(fake, "Before v1", T0 - timedelta(days=1))
    fake.add_release(REPO, "v1.0.0", published_at=T0)
    in_v2 = _merged(fake, "In v2", T0 + timedelta(days=1))
    fake.add_release(REPO, "v2.0.0", published_at=T0 + timedelta(days=2))
    _merged(fake, "After v2", T0 + timedelta(days=3))

    # What a release.published event of v2 reads: its own merges, not the (none) after it.
    got = asyncio.run(reader.merged_pulls_since_release(REPO, 50, release_tag="v2.0.0"))
    assert [p["number"] for p in got] == [in_v2]
    first = asyncio.run(reader.merged_pulls_since_release(REPO, 50, release_tag="v1.0.0"))
    assert [p["title"] for p in first] == ["Before v1"]


def test_merged_pulls_without_a_release_are_the_recent_ones(fake: FakeGitHub, reader: GitHubReader) -> None:
    numbers = [_merged(fake, f"Change {n}", T0 + timedelta(hours=n)) for n in range(4)]
    got = asyncio.run(reader.merged_pulls_since_release(REPO, 3))
    assert [p["number"] for p in got] == numbers[::-1][:3]


def test_merged_pulls_by_merge_time_when_updated_later(fake: FakeGitHub, reader: GitHubReader) -> None:
    # one merged long ago but commented on today lists first by update; the newest merges still win
    old = _merged(fake, "Old", T0)
    new = _merged(fake, "New", T0 + timedelta(days=3))
    fake.pulls[(REPO, old)]["updated_at"] = "2024-06-01T00:00:00Z"
    got = asyncio.run(reader.merged_pulls_since_release(REPO, 1))
    assert [p["number"] for p in got] == [new]


def test_contributors_most_first_and_capped(fake: FakeGitHub, reader: GitHubReader) -> None:
    fake.add_contributor(REPO, "alice", 10)
    fake.add_contributor(REPO, "dependabot[bot]", 40, type="Bot")
    fake.add_contributor(REPO, "bob", 3)
    got = asyncio.run(reader.contributors(REPO, 2))
    assert got == [
        {"login": "dependabot[bot]", "contributions": 40, "type": "Bot"},
        {"login": "alice", "contributions": 10, "type": "User"},
    ]


def test_contributors_of_an_empty_repository(fake: FakeGitHub, reader: GitHubReader) -> None:
    assert asyncio.run(reader.contributors(REPO, 30)) == []


def test_stargazers_newest_first_and_capped(fake: FakeGitHub, reader: GitHubReader) -> None:
    for n in range(150):
        fake.star(REPO, f"fan{n}", type="Organization" if n == 149 else "User")
    got = asyncio.run(reader.stargazers(REPO, 120))
    assert got[0] == {"login": "fan149", "type": "Organization"}
    assert [user["login"] for user in got] == [f"fan{n}" for n in range(149, 29, -1)]
    assert [c.query["page"] for c in fake.calls("GET", r"/stargazers$")] == ["2", "1"]


def test_no_stargazers(fake: FakeGitHub, reader: GitHubReader) -> None:
    assert asyncio.run(reader.stargazers(REPO, 100)) == []
    assert fake.calls("GET", r"/stargazers$") == []


def test_issues_by_label_and_state_without_pull_requests(fake: FakeGitHub, reader: GitHubReader) -> None:
    lead = fake.add_issue(REPO, "Acme", "a lead", labels=["lead", "lead:new"], user=fake.user("acme", 701))
    fake.add_issue(REPO, "Globex", "a lead", labels=["lead", "lead:won"], state="closed")
    fake.add_issue(REPO, "A bug", "not a lead", labels=["bug"])
    fake.add_pull(REPO, "feature", fake.default_branch, "A pull request", None)

    got = asyncio.run(reader.issues(REPO, ["lead"], "open", 10))

    assert got == [
        {
            "number": lead["number"],
            "title": "Acme",
            "state": "open",
            "labels": ["lead", "lead:new"],
            "user": "acme",
            "updated_at": lead["updated_at"],
            "created_at": lead["created_at"],
            "url": f"https://github.com/{REPO}/issues/{lead['number']}",
            "comments": 0,
        }
    ]
    assert [i["title"] for i in asyncio.run(reader.issues(REPO, ["lead"], "all", 10))] == ["Acme", "Globex"]
    assert [i["title"] for i in asyncio.run(reader.issues(REPO, [], "open", 10))] == ["Acme", "A bug"]
    assert fake.calls("GET", r"/issues$")[-1].query["state"] == "open"


def test_issues_not_updated_for_days_paged_and_capped(fake: FakeGitHub, reader: GitHubReader) -> None:
    old = (datetime.now(UTC) - timedelta(days=40)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for n in range(130):
        fake.add_issue(REPO, f"stale {n}", None, labels=["lead"], updated_at=old)
    fake.add_issue(REPO, "fresh", None, labels=["lead"])

    stale = asyncio.run(reader.issues(REPO, ["lead"], "open", 100, updated_before_days=30))
    assert len(stale) == 100 and "fresh" not in {i["title"] for i in stale}
    assert len(fake.calls("GET", r"/issues$")) == 1  # a page of 100 filled the cap
    newer = asyncio.run(reader.issues(REPO, ["lead"], "open", 100, updated_before_days=50))
    assert newer == []
    assert len(fake.calls("GET", r"/issues$")) == 3  # both pages of 131 read, none matched


def test_issues_refuse_an_unknown_state(reader: GitHubReader) -> None:
    with pytest.raises(ValueError, match="open, closed or all"):
        asyncio.run(reader.issues(REPO, [], "merged", 10))


def example_event(name: str, example: str) -> Event:
    """A real webhook payload from the catalogue's examples."""
    return Event.from_payload("d-1", name, json.loads((SPECS / example).read_text()))


def timer(action: str) -> Event:
    schedule = {"period": action, "starts_at": "2025-01-06T00:00:00+00:00", "date": "2025-01-06", "week": "2025-W02"}
    payload = {"schedule": schedule, "repository": {"full_name": REPO, "name": "repo", "owner": {"login": "octo"}}}
    return Event.from_payload("d-2", "schedule", {**payload, "action": action})


def test_a_read_whose_when_is_false_costs_no_github_call(fake: FakeGitHub, reader: GitHubReader) -> None:
    crm = load_spec(SPECS / "sales/crm-management.yaml")
    labelled_bug = example_event("issues", "sales/examples/issues.labeled.bug.json")
    # A label that is no stage: no rule uses the lead, the pipeline or the stale leads.
    assert asyncio.run(gather_reads(crm, labelled_bug, reader, {})) == {"issue": None, "issues": [], "stale_leads": []}
    assert fake.requests == []

    month_ago = (datetime.now(UTC) - timedelta(days=40)).strftime("%Y-%m-%dT%H:%M:%SZ")
    fake.add_issue(REPO, "[Lead]: Initech", "hi", labels=["lead"], updated_at=month_ago)
    weekly = asyncio.run(gather_reads(crm, timer("weekly"), reader, {}))
    assert (
        [lead["title"] for lead in weekly["issues"]]
        == [lead["title"] for lead in weekly["stale_leads"]]
        == ["[Lead]: Initech"]
    )
    assert len(fake.calls("GET", r"/issues$")) == 2

    fake.requests.clear()
    success = load_spec(SPECS / "support/customer-success.yaml")
    first_pull = example_event("pull_request", "support/examples/pull_request.opened.first-time.json")
    # Its welcome reads the payload alone: neither the pull request's thread nor the waiting issues.
    assert asyncio.run(gather_reads(success, first_pull, reader, {})) == {"issue": None, "issues": [], "needs_info": []}
    assert fake.requests == []
