"""WowVision end to end: signed real pull_request payloads → intake → worker → fake GitHub."""

from __future__ import annotations

import json
from datetime import UTC

import pytest
from sqlalchemy import select

from agents.store.tables import Decision
from bot.wiring import Platform
from tests.conftest import load_payload
from tests.fakes.github import FakeGitHub
from tests.helpers import delivering, github_platform
from tests.vision_support import modified

REPO = "Codertocat/Hello-World"
SECRET_VALUE = "AKIAQYLPMN5HHHFPZAM2"
HEAD = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
BASE = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"
NEW_HEAD = "1111111111111111111111111111111111111111"

MAIN_V1 = f'import os\n\nAWS_KEY = "{SECRET_VALUE}"\nbreakpoint()\nprint(os.getcwd())\n'
MAIN_V2 = f'import os\n\nAWS_KEY = "{SECRET_VALUE}"\nprint(os.getcwd())\n'


def new_file_diff(path: str, content: str) -> str:
    lines = content.splitlines()
    body = "".join(f"+{line}\n" for line in lines)
    return (
        f"diff --git a/{path} b/{path}\nnew file mode 100644\nindex 0000000..1111111\n"
        f"--- /dev/null\n+++ b/{path}\n@@ -0,0 +1,{len(lines)} @@\n{body}"
    )


@pytest.fixture
def world(store):
    with FakeGitHub() as fake:
        fake.set_permission("Codertocat", "admin")
        fake.pull_diffs[(REPO, 2)] = new_file_diff("app/main.py", MAIN_V1)
        fake.files[(REPO, HEAD, "app/main.py")] = MAIN_V1.encode()
        with delivering(lambda: github_platform(store, fake.url)) as deliver:
            yield fake, deliver


def opened(**overrides):
    return load_payload("pull_request/opened.payload.json", **overrides)


def synchronize(fake: FakeGitHub, content: str) -> dict:
    """The PR's head moves to NEW_HEAD, where app/main.py is `content`: the synchronize payload."""
    fake.pull_diffs[(REPO, 2)] = new_file_diff("app/main.py", content)
    fake.files[(REPO, NEW_HEAD, "app/main.py")] = content.encode()
    payload = opened(action="synchronize")
    payload["pull_request"]["head"]["sha"] = NEW_HEAD
    return payload


def sent_text(fake: FakeGitHub) -> str:
    return json.dumps([call.json for call in fake.requests])


def test_a_pull_request_gets_one_check_run_one_review_one_summary(world, store):
    fake, deliver = world
    assert deliver("pull_request", opened(), "pr-1").status == "queued"
    assert len(fake.check_runs) == 1
    check = next(iter(fake.check_runs.values()))
    assert check["name"] == "WowVision" and check["head_sha"] == HEAD and check["conclusion"] == "failure"
    assert check["output"]["title"] == "2 errors, 1 notice"  # counted as the summary counts, none of zero
    assert len(fake.reviews) == 1
    inline = next(iter(fake.review_comments.values()))
    assert sorted((c["path"], c["line"]) for c in inline) == [
        ("app/main.py", 3),
        ("app/main.py", 4),
        ("app/main.py", 5),
    ]
    summaries = [c for c in fake.comments.values() if "waooaw:wowvision:comment:summary:2" in c["body"]]
    assert len(summaries) == 1 and "secret-aws-key" in summaries[0]["body"]
    assert SECRET_VALUE not in sent_text(fake), "a secret must never be echoed back"
    with store.session() as session:
        fired = sorted(
            d.rule
            for d in session.query(Decision).filter(Decision.agent == "wowvision", Decision.rung == "deterministic")
        )
    assert fired == ["hygiene-breakpoint", "hygiene-print", "secret-aws-key"]


def test_redelivery_and_a_repeat_of_the_same_head_duplicate_nothing(world):
    fake, deliver = world
    deliver("pull_request", opened(), "pr-1")
    assert deliver("pull_request", opened(), "pr-1").status == "duplicate"
    deliver("pull_request", opened(action="reopened"), "pr-1-again")
    assert len(fake.check_runs) == 1 and len(fake.reviews) == 1
    assert len([c for c in fake.comments.values() if "summary:2" in c["body"]]) == 1


def test_synchronize_posts_only_new_findings_and_strikes_fixed_ones(world):
    fake, deliver = world
    deliver("pull_request", opened(), "pr-1")
    payload = synchronize(fake, MAIN_V2)
    deliver("pull_request", payload, "pr-2")
    assert len(fake.check_runs) == 2  # one per head SHA
    assert len(fake.reviews) == 1, "no new finding at the new head: no second review"
    summary = next(c for c in fake.comments.values() if "summary:2" in c["body"])
    assert "~~`hygiene-breakpoint`" in summary["body"]
    assert "secret-aws-key" in summary["body"]
    assert not fake.calls("PUT", r"/dismissals$"), "COMMENT mode: nothing to dismiss"


MAIN_FIXED = "import os\n\nprint(os.getcwd())\n# TODO tidy this up\n"  # no error left, one new notice


def test_a_review_requesting_changes_is_dismissed_once_its_findings_are_fixed(world):
    fake, deliver = world
    fake.files[(REPO, BASE, ".github/waooaw.yml")] = b"review: REQUEST_CHANGES\n"
    deliver("pull_request", opened(), "pr-1")
    (first,) = fake.reviews.values()
    assert first["state"] == "CHANGES_REQUESTED"

    payload = synchronize(fake, MAIN_FIXED)
    deliver("pull_request", payload, "pr-2")
    deliver("pull_request", payload, "pr-2-again")  # the same head once more: nothing more happens

    assert first["state"] == "DISMISSED"
    (dismissal,) = fake.calls("PUT", rf"/pulls/2/reviews/{first['id']}/dismissals$")
    assert dismissal.json["message"] == f"WowVision: no error-level finding is left at {NEW_HEAD[:7]}."
    (second,) = [r for r in fake.reviews.values() if r["id"] != first["id"]]
    assert (second["state"], second["commit_id"]) == ("COMMENTED", NEW_HEAD)
    assert [c["line"] for c in fake.review_comments[second["id"]]] == [4]  # only the new to-do
    assert len(fake.check_runs) == 2


def test_a_review_requesting_changes_stays_while_an_error_is_left(world):
    fake, deliver = world
    fake.files[(REPO, BASE, ".github/waooaw.yml")] = b"review: REQUEST_CHANGES\n"
    deliver("pull_request", opened(), "pr-1")
    payload = synchronize(fake, MAIN_V2)  # the secret is still there
    deliver("pull_request", payload, "pr-2")
    (first,) = fake.reviews.values()
    assert first["state"] == "CHANGES_REQUESTED" and not fake.calls("PUT", r"/dismissals$")


def test_the_config_comes_from_the_base_commit_not_the_pull_request(world):
    fake, deliver = world
    fake.files[(REPO, BASE, ".github/waooaw.yml")] = b"rules:\n  hygiene-breakpoint: off\n"
    fake.files[(REPO, HEAD, ".github/waooaw.yml")] = b"rules:\n  secret-aws-key: off\n"  # the PR tries to switch it off
    deliver("pull_request", opened(), "pr-1")
    summary = next(c for c in fake.comments.values() if "summary:2" in c["body"])["body"]
    assert "secret-aws-key" in summary and "hygiene-breakpoint" not in summary


def test_an_invalid_config_fails_the_check_with_its_line(world):
    fake, deliver = world
    fake.files[(REPO, BASE, ".github/waooaw.yml")] = b"packs: [secrets]\nreview: SOMETIMES\n"
    deliver("pull_request", opened(), "pr-1")
    check = next(iter(fake.check_runs.values()))
    assert check["conclusion"] == "failure"
    summary = next(c for c in fake.comments.values() if "summary:2" in c["body"])["body"]
    assert ".github/waooaw.yml:2" in summary
    assert not fake.reviews


def test_a_fork_pull_request_is_reviewed_like_any_other(world):
    fake, deliver = world
    payload = opened()
    payload["pull_request"]["head"]["repo"]["full_name"] = "stranger/Hello-World"
    payload["pull_request"]["head"]["repo"]["id"] = 999999
    deliver("pull_request", payload, "fork-1")
    assert len(fake.check_runs) == 1 and len(fake.reviews) == 1


def comment(text: str, login: str = "Codertocat") -> dict:
    payload = load_payload("issue_comment/created.payload.json", comment__body=text)
    payload["issue"]["number"] = 2
    payload["issue"]["pull_request"] = {"url": f"https://api.github.com/repos/{REPO}/pulls/2"}
    payload["sender"]["login"] = login
    payload["installation"] = opened()["installation"]  # the same installation as the PR's events
    return payload


def test_pause_needs_write_access_and_stops_reviews(world):
    fake, deliver = world
    fake.set_permission("stranger", "read")
    deliver("issue_comment", comment("/wowvision pause", login="stranger"), "c-1")
    assert any("needs write access" in c["body"] for c in fake.comments.values())
    deliver("issue_comment", comment("/wowvision pause"), "c-2")
    deliver("pull_request", opened(), "pr-1")
    assert not fake.check_runs and not fake.reviews
    deliver("issue_comment", comment("/wowvision resume"), "c-3")
    deliver("pull_request", opened(action="synchronize"), "pr-2")
    assert len(fake.check_runs) == 1


def test_ignore_records_a_suppression_and_explain_answers_anyone(world):
    fake, deliver = world
    deliver("issue_comment", comment("/wowvision ignore hygiene-breakpoint debugging a flaky test"), "c-1")
    deliver("pull_request", opened(), "pr-1")
    summary = next(c for c in fake.comments.values() if "summary:2" in c["body"])["body"]
    assert "hygiene-breakpoint" not in summary and "secret-aws-key" in summary
    fake.set_permission("stranger", "none")
    deliver("issue_comment", comment("/wowvision explain secret-aws-key", login="stranger"), "c-2")
    assert any("**`secret-aws-key`**" in c["body"] for c in fake.comments.values())


def test_a_suppression_shows_in_waooaw_status(world):
    fake, deliver = world
    deliver("issue_comment", comment("/wowvision ignore hygiene-print scripts print by design"), "c-1")
    deliver("issue_comment", comment("/waooaw status"), "c-2")
    status = next(c for c in fake.comments.values() if "waooaw:concierge:comment:status:2" in c["body"])["body"]
    assert "`hygiene-print` by @\u200bCodertocat: scripts print by design" in status  # named, not mentioned again


SWALLOW = "def load(path):\n    try:\n        return open(path).read()\n    except Exception:\n        pass\n"


def review_with_claude(
    store, fake: FakeGitHub, claude_url: str, payload: dict, delivery: str, *, shared_cache: bool = False
) -> None:
    """Deliver a pull_request event to an app whose LLM rung asks the fake Claude at `claude_url`."""
    from agents.decisions import decision_cache
    from agents.llm import LLMClient

    def with_claude() -> Platform:
        platform = github_platform(store, fake.url)
        platform.llm = LLMClient("test-key", "claude-sonnet-5-5", base_url=claude_url)
        platform.decision_cache = decision_cache(store, shares_public=shared_cache)
        return platform

    with delivering(with_claude) as deliver:
        deliver("pull_request", payload, delivery)


def test_the_llm_rung_judges_what_no_rule_settled_and_caches_it(store):
    from tests.fakes.anthropic import FakeAnthropic

    with FakeGitHub() as fake, FakeAnthropic() as claude:
        fake.set_permission("Codertocat", "write")
        fake.pull_diffs[(REPO, 2)] = new_file_diff("app/io.py", SWALLOW)
        fake.files[(REPO, HEAD, "app/io.py")] = SWALLOW.encode()
        # What reaches the model is data: an instruction hidden in the diff changes nothing.
        claude.answer({"violates": True, "line": 4})

        review_with_claude(store, fake, claude.url, opened(), "llm-1")
        assert len(claude.messages) == 1
        sent = claude.messages[0].json
        assert sent["system"][0]["cache_control"] == {"type": "ephemeral"}
        assert "except Exception" in json.dumps(sent["messages"])
        check = next(iter(fake.check_runs.values()))
        assert "architecture-swallowed-errors" in check["output"]["summary"]
        review_with_claude(store, fake, claude.url, opened(), "llm-2")  # the same hunk again: the cache answers
        assert len(claude.messages) == 1


@pytest.mark.parametrize("shared_cache, rungs", [(False, ["llm", "llm"]), (True, ["llm", "cached"])])
def test_a_cached_verdict_answers_only_its_installation_unless_shared_for_public_repos(store, shared_cache, rungs):
    """The same hunk in two installations' repositories (both public, as the payload says): the
    second is asked again, unless the operator shares verdicts on public repositories."""
    from tests.fakes.anthropic import FakeAnthropic

    other = "globex/app"
    with FakeGitHub() as fake, FakeAnthropic() as claude:
        fake.set_permission("Codertocat", "write")
        for repo in (REPO, other):
            fake.pull_diffs[(repo, 2)] = new_file_diff("app/io.py", SWALLOW)
            fake.files[(repo, HEAD, "app/io.py")] = SWALLOW.encode()
        claude.responder = lambda request: {"violates": True, "line": 4}
        theirs = opened()
        theirs["repository"]["full_name"] = other
        theirs["installation"]["id"] = opened()["installation"]["id"] + 1
        review_with_claude(store, fake, claude.url, opened(), "acme-1", shared_cache=shared_cache)
        review_with_claude(store, fake, claude.url, theirs, "globex-1", shared_cache=shared_cache)
        assert len(claude.messages) == rungs.count("llm")
    with store.reading() as session:
        judged = session.execute(
            select(Decision.repo, Decision.rung).where(Decision.rung.in_(("llm", "cached"))).order_by(Decision.id)
        ).all()
    assert [tuple(row) for row in judged] == list(zip((REPO, other), rungs, strict=True))


def test_without_an_api_key_llm_rules_are_reported_skipped_never_passed(world):
    fake, deliver = world
    fake.pull_diffs[(REPO, 2)] = new_file_diff("app/io.py", SWALLOW)
    fake.files[(REPO, HEAD, "app/io.py")] = SWALLOW.encode()
    deliver("pull_request", opened(), "pr-1")
    check = next(iter(fake.check_runs.values()))
    assert check["conclusion"] == "success"
    summary = next(c for c in fake.comments.values() if "summary:2" in c["body"])["body"]
    assert "architecture-swallowed-errors" in summary and "not checked, not passed" in summary
    assert "llm_not_configured" in summary or "LLM rung" in summary


def test_a_pull_request_by_someone_without_write_access_spends_nothing(world):
    fake, deliver = world
    fake.set_permission("Codertocat", "read")
    fake.pull_diffs[(REPO, 2)] = new_file_diff("app/io.py", SWALLOW)
    fake.files[(REPO, HEAD, "app/io.py")] = SWALLOW.encode()
    deliver("pull_request", opened(), "pr-1")
    summary = next(c for c in fake.comments.values() if "summary:2" in c["body"])["body"]
    assert "no write access" in summary


def test_extends_takes_the_org_config_and_the_repo_overrides_it(world):
    fake, deliver = world
    fake.files[("Codertocat/.github", "HEAD", ".github/waooaw.yml")] = (
        b"rules:\n  hygiene-breakpoint: off\n  hygiene-print: error\n"
    )
    fake.files[(REPO, BASE, ".github/waooaw.yml")] = b"extends: Codertocat/.github\nrules:\n  hygiene-print: off\n"
    deliver("pull_request", opened(), "pr-1")
    summary = next(c for c in fake.comments.values() if "summary:2" in c["body"])["body"]
    assert "secret-aws-key" in summary
    assert "hygiene-breakpoint" not in summary and "hygiene-print" not in summary


def test_extends_an_org_file_that_is_missing_is_a_clear_error(world):
    fake, deliver = world
    fake.files[(REPO, BASE, ".github/waooaw.yml")] = b"extends: Codertocat/.github\n"
    deliver("pull_request", opened(), "pr-1")
    summary = next(c for c in fake.comments.values() if "summary:2" in c["body"])["body"]
    assert "Codertocat/.github has no .github/waooaw.yml" in summary


def test_a_pull_request_too_large_for_a_diff_is_reviewed_from_its_files(world):
    fake, deliver = world
    del fake.pull_diffs[(REPO, 2)]  # GitHub: "the diff exceeded the maximum number of files"
    patch = "@@ -0,0 +1,2 @@\n+import os\n+breakpoint()"
    listed = [
        {
            "filename": f"pkg/m{i}.py",
            "status": "added",
            "additions": 2,
            "deletions": 0,
            "changes": 2,
            "patch": patch,
            "sha": "0" * 40,
        }
        for i in range(250)
    ]
    fake.pull_files[(REPO, 2)] = listed
    payload = opened()
    payload["pull_request"]["changed_files"] = 3200
    deliver("pull_request", payload, "huge-1")
    summary = next(c for c in fake.comments.values() if "summary:2" in c["body"])["body"]
    assert "hygiene-breakpoint" in summary
    check = next(iter(fake.check_runs.values()))
    assert check["conclusion"] == "failure"
    assert "2950 more files GitHub does not list" in summary


def test_the_daily_report_counts_wowvision_findings_and_suppressions(world, store):
    from datetime import datetime

    from agents.reports import build_daily_report

    fake, deliver = world
    deliver("pull_request", opened(), "pr-1")
    deliver("pull_request", opened(action="reopened"), "pr-1-again")  # the same findings again: not new
    deliver("issue_comment", comment("/wowvision ignore hygiene-print noisy"), "c-1")
    report = build_daily_report(store, datetime.now(UTC).date(), "UTC")
    assert report.wowvision.findings_opened == 3
    assert report.wowvision.suppressions_added == 1
    assert [(r.name, r.count) for r in report.wowvision.repos_most_open] == [(REPO, 3)]


def rerun_suite(*numbers: int) -> dict:
    """The suite's Re-run button (GitHub's real check_suite.rerequested payload), listing PRs `numbers`."""
    payload = load_payload("check_suite/rerequested.payload.json")
    listed = payload["check_suite"]["pull_requests"][0]
    payload["check_suite"]["pull_requests"] = [listed | {"number": n} for n in numbers]
    payload["installation"] = opened()["installation"]  # the same installation as the PR's events
    return payload


def test_the_suite_re_run_button_reviews_again_a_paused_pull_request(world):
    fake, deliver = world
    fake.pulls[(REPO, 2)] = opened()["pull_request"]
    deliver("issue_comment", comment("/wowvision pause"), "c-1")
    deliver("pull_request", opened(), "pr-1")
    assert not fake.check_runs

    assert deliver("check_suite", rerun_suite(2), "suite-1").status == "queued"
    deliver("check_suite", rerun_suite(2), "suite-2")  # pressed twice: the same SHA is not reviewed twice over

    (check,) = fake.check_runs.values()
    assert (check["head_sha"], check["conclusion"]) == (HEAD, "failure")
    assert len(fake.reviews) == 1
    assert len([c for c in fake.comments.values() if "summary:2" in c["body"]]) == 1


def test_the_suite_re_run_reviews_each_open_pull_request_at_its_head(world, store):
    from agents.context import repository
    from agents.context.repository import ContextKey

    fake, deliver = world
    for number, state in ((2, "open"), (3, "open"), (4, "closed")):
        fake.pulls[(REPO, number)] = opened()["pull_request"] | {"number": number, "state": state}
        fake.pull_diffs[(REPO, number)] = fake.pull_diffs[(REPO, 2)]
    moved_on = opened()["pull_request"]
    moved_on.update(number=5, head=moved_on["head"] | {"sha": NEW_HEAD})
    fake.pulls[(REPO, 5)] = moved_on

    deliver("check_suite", rerun_suite(2, 3, 4, 5), "suite-1")

    reviewed = sorted(r["pull_request_url"].rsplit("/", 1)[1] for r in fake.reviews.values())
    assert reviewed == ["2", "3"]
    assert {c["issue_url"].rsplit("/", 1)[1] for c in fake.comments.values() if "summary:" in c["body"]} == {"2", "3"}
    installation = opened()["installation"]["id"]
    with store.reading() as session:  # each PR keeps what was posted on it, for its next push
        for number in (2, 3):
            saved = repository.latest(session, ContextKey(installation, REPO, "wowvision", f"pr-{number}"))
            assert saved is not None and saved.data["head_sha"] == HEAD and saved.data["posted"]


# ---------------------------------------------------------------- tenants and hostile input

ACME, GLOBEX = ("acme/widgets", 1001), ("globex/app", 2002)
BEFORE, AFTER, CLEAN = "a" * 40, "b" * 40, "c" * 40


def push(repo: str, installation: int, before: str, after: str) -> dict:
    """A push to the default branch of `repo` (GitHub's real payload, moved there)."""
    payload = load_payload("push/with-new-branch.payload.json", before=before, after=after)
    owner, name = repo.split("/")
    payload["repository"].update(full_name=repo, name=name, id=installation * 10)
    payload["repository"]["owner"]["login"] = owner
    payload["installation"] = {"id": installation, "node_id": f"I_{installation}"}
    return payload


def commented(repo: str, installation: int, number: int, text: str, comment_id: int, login: str = "Codertocat") -> dict:
    payload = comment(text, login)
    payload["comment"]["id"] = comment_id
    payload["issue"]["number"] = number
    owner, name = repo.split("/")
    payload["repository"].update(full_name=repo, name=name)
    payload["installation"] = {"id": installation, "node_id": f"I_{installation}"}
    return payload


def inert(body: str) -> str:
    """What GitHub renders of `body` outside code, asserting nothing in it is live; returns it."""
    import re

    import cmarkgfm
    from cmarkgfm.cmark import Options

    rendered = cmarkgfm.github_flavored_markdown_to_html(body, options=Options.CMARK_OPT_UNSAFE)
    outside = re.sub(r"<code>.*?</code>", "", rendered, flags=re.S)
    assert "<a " not in outside and "@acme/security-team" not in outside, outside
    assert body.count("<!--") <= 1 and (body.count("<!--") == 0 or body.rstrip().endswith("-->")), body
    return outside


def test_a_push_on_another_repository_opens_its_own_issues_and_leaves_a_human_one_alone(world):
    fake, deliver = world
    for (repo, _installation), content in ((ACME, MAIN_V1), (GLOBEX, MAIN_V1)):
        fake.compare_diffs[(repo, BEFORE, AFTER)] = new_file_diff("app/main.py", content)
        fake.files[(repo, AFTER, "app/main.py")] = content.encode()
    fake.compare_diffs[(GLOBEX[0], AFTER, CLEAN)] = new_file_diff("app/main.py", "import os\n")
    fake.files[(GLOBEX[0], CLEAN, "app/main.py")] = b"import os\n"
    human = fake.add_issue(GLOBEX[0], "Login page broken", "steps to reproduce", user=fake.user("alice", 5))

    deliver("push", push(*ACME, BEFORE, AFTER), "push-acme")
    acme = {number: issue["title"] for (repo, number), issue in fake.issues.items() if repo == ACME[0]}
    assert 1 in acme and acme[1].startswith("WowVision: ")
    deliver("push", push(*GLOBEX, BEFORE, AFTER), "push-globex")
    deliver("push", push(*GLOBEX, AFTER, CLEAN), "push-globex-clean")  # closes what it opened, and only that

    assert (human["number"], human["title"], human["body"], human["state"]) == (
        1,
        "Login page broken",
        "steps to reproduce",
        "open",
    )
    assert not fake.calls("PATCH", r"^/repos/globex/app/issues/1$")
    globex = [issue for (repo, number), issue in fake.issues.items() if repo == GLOBEX[0] and number != 1]
    assert sorted(i["title"] for i in globex) == sorted(acme.values())
    assert all(i["state"] == "closed" and i["user"]["id"] == fake.bot["id"] for i in globex)
    assert all(i["state"] == "open" for (repo, _), i in fake.issues.items() if repo == ACME[0])


def test_the_same_help_in_two_repositories_is_answered_in_both(world):
    fake, deliver = world
    deliver("issue_comment", commented(*ACME, 40, "/waooaw help", comment_id=7001), "help-acme")
    deliver("issue_comment", commented(*GLOBEX, 40, "/waooaw help", comment_id=7002), "help-globex")
    answered = sorted(
        c["issue_url"].split("/repos/")[1]
        for c in fake.comments.values()
        if "waooaw:concierge:comment:help:40" in c["body"]
    )
    assert answered == ["acme/widgets/issues/40", "globex/app/issues/40"]


PLANTED = "docs/<!-- waooaw:concierge:comment:help:2 -->/models.py"
HOSTILE = "docs/x` @acme/security-team [x](https://evil.example) `y/models.py"


def test_a_file_named_after_a_marker_does_not_make_help_overwrite_the_summary(world):
    fake, deliver = world
    fake.pull_diffs[(REPO, 2)] = new_file_diff(PLANTED, "import os\nbreakpoint()\n")
    fake.files[(REPO, HEAD, PLANTED)] = b"import os\nbreakpoint()\n"
    deliver("pull_request", opened(), "pr-1")
    (summary,) = [c for c in fake.comments.values() if "summary:2" in c["body"]]
    before = summary["body"]
    assert "hygiene-breakpoint" in before

    deliver("issue_comment", commented(REPO, 1, 2, "/waooaw help", comment_id=7003), "help-2")

    assert fake.comments[summary["id"]]["body"] == before
    (help_answer,) = [
        c for c in fake.comments.values() if c["body"].endswith("<!-- waooaw:concierge:comment:help:2 -->")
    ]
    assert help_answer["id"] != summary["id"] and "what you can ask here" in help_answer["body"]
    assert "waooaw:concierge:comment:help:2" in before and inert(before)  # the path is shown, its comment broken


def test_a_hostile_path_renders_inert_in_the_summary_the_review_and_the_check_run(world):
    fake, deliver = world
    fake.valid_anchors = set()  # no comment anchors: the review lists them in its body
    model = "class Thing(Base):\n    name = Column(String)\n"  # a schema: models-need-migration names the path
    fake.pull_diffs[(REPO, 2)] = new_file_diff(HOSTILE, model + "breakpoint()\n")
    fake.files[(REPO, HEAD, HOSTILE)] = (model + "breakpoint()\n").encode()
    deliver("pull_request", opened(), "pr-1")
    payload = opened(action="synchronize")
    payload["pull_request"]["head"]["sha"] = NEW_HEAD
    fake.pull_diffs[(REPO, 2)] = new_file_diff(HOSTILE, model)
    fake.files[(REPO, NEW_HEAD, HOSTILE)] = model.encode()
    deliver("pull_request", payload, "pr-2")  # the finding is fixed: the summary lists it as such

    (review,) = fake.reviews.values()
    assert "could not be placed on the diff" in review["body"]
    (summary,) = [c["body"] for c in fake.comments.values() if "summary:2" in c["body"]]
    assert "Fixed since the last review" in summary
    bodies = [review["body"], summary, *(run["output"]["summary"] for run in fake.check_runs.values())]
    for body in bodies:
        assert "security-team" in body  # the path is shown ...
        assert "evil.example" not in inert(body).replace(
            "https:\u200b//evil.example", ""
        )  # ... and nothing in it is live


def test_a_refused_command_is_echoed_inert(world):
    fake, deliver = world
    fake.set_permission("stranger", "read")
    typed = [
        "/wowvision recheck x [Your token leaked](https://evil.example) @acme/security-team",
        "/wowvision recheck x` [Your token leaked](https://evil.example) @acme/security-team `",
    ]
    for n, text in enumerate(typed):
        deliver("issue_comment", commented(REPO, 1, 2, text, comment_id=7100 + n, login="stranger"), f"c-{n}")
    replies = [c["body"] for c in fake.comments.values() if "needs write access" in c["body"]]
    assert len(replies) == 2
    for reply in replies:
        assert "Your token leaked" in reply and "Your token leaked" not in inert(reply)


def test_an_ignore_reason_is_echoed_inert_in_the_reply_and_in_status(world):
    fake, deliver = world
    reason = "see [the runbook](https://evil.example) @acme/security-team <!-- waooaw:x:y:z -->"
    deliver("issue_comment", commented(REPO, 1, 2, f"/wowvision ignore hygiene-print {reason}", comment_id=7200), "c-1")
    deliver("issue_comment", commented(REPO, 1, 2, "/waooaw status", comment_id=7201), "c-2")
    (reply,) = [c["body"] for c in fake.comments.values() if "is no longer applied" in c["body"]]
    (status,) = [c["body"] for c in fake.comments.values() if c["body"].endswith("comment:status:2 -->")]
    for body in (reply, status):
        assert "the runbook" in body and "the runbook" in inert(body)


def test_a_module_is_reported_large_when_the_pull_request_makes_it_so_not_when_it_already_was(world):
    fake, deliver = world
    filler = "".join(f"VALUE_{n} = {n}\n" for n in range(5000))  # ~60 KB: over structure-large-module's 50 KB
    small, big = filler[:40_000], filler
    fake.pull_diffs[(REPO, 2)] = modified("app/old_big.py", big, big + "MORE = 1\n") + modified(
        "app/grown.py", small, big
    )
    fake.files[(REPO, BASE, "app/old_big.py")] = big.encode()
    fake.files[(REPO, HEAD, "app/old_big.py")] = (big + "MORE = 1\n").encode()
    fake.files[(REPO, BASE, "app/grown.py")] = small.encode()
    fake.files[(REPO, HEAD, "app/grown.py")] = big.encode()
    deliver("pull_request", opened(), "pr-large")
    summary = next(c for c in fake.comments.values() if "summary:2" in c["body"])["body"]
    large = [line for line in summary.splitlines() if "structure-large-module" in line]
    assert len(large) == 1 and "app/grown.py" in large[0] and "grew from" in large[0], summary
    asked = {(call.query.get("ref"), call.path.rsplit("/contents/", 1)[1]) for call in fake.calls("GET", r"/contents/")}
    assert {(BASE, "app/old_big.py"), (BASE, "app/grown.py")} <= asked
