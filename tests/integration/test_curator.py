"""The Learning Curator in the app, in-process: outcomes in the real store, `/waooaw curate` through
intake and the worker, its pull request in the fake GitHub — and the daily run publishing the same one.

It proposes and never applies: the config on the default branch stays as it was until a person
merges the pull request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import pytest

from agents.curator import CURATOR
from agents.reputation.outcomes import Outcome, record
from agents.store.tables import utcnow
from agents.vision.config import CONFIG_PATH, parse_config
from bot.github import GitHubClients
from bot.reputation_jobs import curator_schedule, run_curator
from tests.conftest import load_payload
from tests.fakes.github import FakeGitHub
from tests.helpers import Deliver, delivering, github_platform, make_platform, make_settings

REPO = "Codertocat/Hello-World"
INSTALLATION = 1  # of the issue_comment and pull_request payloads below
BRANCH = "master"  # their repository's default branch
CONFIG = b"# ours\npacks: [secrets, hygiene]\nrules:\n  hygiene-print: warning   # kept short\n"
THREAD = f"https://github.com/{REPO}/pull/7#discussion_r"


@pytest.fixture
def world(store) -> Iterator[tuple[FakeGitHub, Deliver]]:
    with FakeGitHub() as fake:
        fake.default_branch = BRANCH
        fake.set_permission("Codertocat", "write")
        fake.files[(REPO, BRANCH, CONFIG_PATH)] = CONFIG
        with delivering(lambda: github_platform(store, fake.url)) as deliver:
            yield fake, deliver


def curate(deliver: Deliver, text: str = "/waooaw curate") -> None:
    deliver("issue_comment", load_payload("issue_comment/created.with-installation.payload.json", comment__body=text))


def outcomes(store, *found: Outcome) -> None:
    with store.session() as session:
        record(session, found)


def unresolved(rule: str, n: int, path: str, *, start: int = 0) -> list[Outcome]:
    """`n` review threads on `rule`'s findings in `path`, marked unresolved by a person."""
    return [
        Outcome(
            INSTALLATION,
            REPO,
            "wowvision",
            "thread_unresolved",
            f"thread-{rule}-{i}",
            rule=rule,
            url=f"{THREAD}{1000 + i}",
            github_id=1000 + i,
            evidence={"path": path, "line": 3},
        )
        for i in range(start, start + n)
    ]


def closed_unmerged(agent: str, n: int) -> list[Outcome]:
    return [
        Outcome(
            INSTALLATION, REPO, agent, "pr_closed", f"pr-{i}", url=f"https://github.com/{REPO}/pull/{i}", github_id=i
        )
        for i in range(1, n + 1)
    ]


def replies(fake: FakeGitHub) -> list[str]:
    return [call.json["body"] for call in fake.calls("POST", r"/issues/\d+/comments$")]


def answer(fake: FakeGitHub) -> str:
    """The curator's one answer on the issue, as it reads now (asked again, it is edited in place)."""
    (comment,) = (c for c in fake.comments.values() if f"waooaw:{CURATOR}:comment:" in c["body"])
    return str(comment["body"])


def test_the_pull_request_carries_the_evidence_and_changes_nothing_until_it_is_merged(world, store):
    fake, deliver = world
    ignored = Outcome(
        INSTALLATION,
        REPO,
        "wowvision",
        "finding_ignored",
        "rule:hygiene-print",
        rule="hygiene-print",
        url=f"https://github.com/{REPO}/issues/1#issuecomment-5",
        evidence={"by": "Codertocat", "reason": "we log with print"},
    )
    outcomes(store, ignored, *unresolved("hygiene-todo-without-issue", 3, "scripts/tools/release.py"))
    outcomes(store, *closed_unmerged("wowdomain", 5))
    curate(deliver)

    (pull,) = fake.pull_requests
    assert pull["base"]["ref"] == BRANCH and pull["head"]["ref"].startswith("waooaw/curate-")
    assert fake.files[(REPO, BRANCH, CONFIG_PATH)] == CONFIG  # proposed, not applied
    proposed = fake.files[(REPO, pull["head"]["ref"], CONFIG_PATH)].decode()
    assert proposed.startswith("# ours\npacks: [secrets, hygiene]\nrules:\n  hygiene-print: notice   # kept short\n")
    config = parse_config(proposed)
    assert config.rules["hygiene-print"].severity == "notice"  # warning → notice: ignored, never fixed
    assert config.rules["hygiene-todo-without-issue"].ignore == ["scripts/tools/**"]  # all in one directory
    assert config.agents.disable == ["wowdomain"]  # 5 pull requests closed unmerged out of 5

    body = pull["body"]
    assert "### Rule `hygiene-print`: lower its severity: warning → notice" in body
    assert "| a rule dismissed with /wowvision ignore | 1 |" in body
    assert "| a review thread unresolved | 3 |" in body
    assert f"({THREAD}1002) `scripts/tools/release.py:3`" in body
    assert "### Pause `wowdomain` on this repository" in body and "| a pull request closed unmerged | 5 |" in body
    assert f"(https://github.com/{REPO}/pull/5)" in body
    assert "Score: 0.03 (0+ / 5−)" in body  # the agent's score over these outcomes
    assert "Nothing changes until a maintainer merges" in body
    (reply,) = replies(fake)
    assert "merging it is the decision" in reply and "pause `wowdomain`" in reply

    fake.merge_pull(REPO, pull["number"])
    assert parse_config(fake.files[(REPO, BRANCH, CONFIG_PATH)]).agents.disable == ["wowdomain"]


def test_no_pull_request_without_evidence_over_the_thresholds(world, store):
    fake, deliver = world
    curate(deliver)  # no outcome at all
    fixed_once = Outcome(
        INSTALLATION, REPO, "wowvision", "finding_fixed", "pr-7:abc", rule="hygiene-breakpoint", evidence={}
    )
    outcomes(
        store,
        *unresolved("hygiene-print", 2, "app/a.py"),  # under 3 unresolved threads
        *unresolved("hygiene-breakpoint", 4, "app/b.py"),
        fixed_once,  # fixed once: not "never fixed"
        *closed_unmerged("wowdomain", 4),  # under 5 outcomes
    )
    curate(deliver)
    assert fake.pull_requests == []
    assert "Nothing to propose" in answer(fake)
    assert fake.commits == []


def test_rerun_is_idempotent_and_more_evidence_updates_the_same_pull_request(world, store):
    fake, deliver = world
    outcomes(store, *unresolved("hygiene-print", 3, "app/a.py"), *unresolved("hygiene-print", 1, "lib/b.py", start=3))
    curate(deliver)
    curate(deliver)  # asked again, nothing new
    (pull,) = fake.pull_requests
    assert len(fake.commits) == 1 and fake.calls("PATCH", r"/pulls/\d+$") == []
    assert "| a review thread unresolved | 4 |" in pull["body"]
    assert parse_config(fake.files[(REPO, pull["head"]["ref"], CONFIG_PATH)]).rules["hygiene-print"].severity == (
        "notice"  # no one directory: its severity goes down
    )

    outcomes(store, *unresolved("hygiene-print", 2, "app/c.py", start=4))
    curate(deliver)
    (same,) = fake.pull_requests
    assert same["number"] == pull["number"] and "| a review thread unresolved | 6 |" in same["body"]
    assert len(fake.commits) == 1  # the file proposed is the same


def test_the_daily_run_publishes_the_same_pull_request_and_nothing_after_it_is_merged(world, store):
    fake, deliver = world
    outcomes(store, *unresolved("hygiene-print", 2, "app/a.py"), *unresolved("hygiene-print", 1, "lib/b.py", start=2))
    settings = make_settings(GITHUB_TOKEN="ghs_test", GITHUB_API_URL=fake.url)

    def daily(since=None) -> int:
        async def run() -> int:
            platform = github_platform(store, fake.url)
            clients = GitHubClients(settings, max_wait=1)
            try:
                return await run_curator(settings, clients, store, platform.registry, platform.publisher, since)
            finally:
                await clients.aclose()
                await platform.publisher.close()

        return asyncio.run(run())

    assert daily() == 1
    curate(deliver)  # the command finds the daily run's pull request
    assert daily() == 1  # brought up to date: nothing to change
    (pull,) = fake.pull_requests
    assert len(fake.commits) == 1 and fake.calls("PATCH", r"/pulls/\d+$") == []
    assert daily(since=utcnow() + timedelta(minutes=1)) == 0  # no outcome since: no repository looked at

    fake.merge_pull(REPO, pull["number"])
    merged = load_payload("pull_request/closed.payload.json", number=pull["number"])
    merged["pull_request"].update(number=pull["number"], merged=True)
    deliver("pull_request", merged)  # the Outcome Clerk notes it
    assert parse_config(fake.files[(REPO, BRANCH, CONFIG_PATH)]).rules["hygiene-print"].severity == "notice"
    assert daily() == 0  # the evidence before the merge was acted on: no "notice → off" from it
    curate(deliver)
    assert "Nothing to propose" in answer(fake) and len(fake.pull_requests) == 1


def test_curate_needs_write_access(world, store):
    fake, deliver = world
    fake.set_permission("Codertocat", "read")
    outcomes(store, *closed_unmerged("wowdomain", 6))
    curate(deliver)
    assert fake.pull_requests == []
    (reply,) = replies(fake)
    assert "needs write access" in reply


def test_an_agent_off_already_is_not_proposed_again(world, store):
    fake, deliver = world
    fake.files[(REPO, BRANCH, CONFIG_PATH)] = b"agents:\n  disable: [wowdomain]\n"
    outcomes(store, *closed_unmerged("wowdomain", 6))
    curate(deliver)
    assert fake.pull_requests == [] and "Nothing to propose" in answer(fake)


def test_the_curators_own_closed_pull_request_is_evidence_about_it(world, store):
    fake, deliver = world
    outcomes(store, *closed_unmerged(CURATOR, 5))
    curate(deliver)
    (pull,) = fake.pull_requests
    assert parse_config(fake.files[(REPO, pull["head"]["ref"], CONFIG_PATH)]).agents.disable == [CURATOR]


def test_the_daily_run_is_on_by_default_with_credentials_and_off_at_0_or_without(sqlite_store):
    on = make_settings(GITHUB_TOKEN="ghs_test")
    off = make_settings(GITHUB_TOKEN="ghs_test", WAOOAW_CURATE_INTERVAL="0")
    assert on.curate_interval == timedelta(days=1) and off.curate_interval == timedelta(0)
    platform = make_platform(sqlite_store)
    parts = (sqlite_store, platform.registry, platform.publisher, asyncio.Event())
    schedule = curator_schedule(on, GitHubClients(on), *parts)
    assert schedule is not None
    schedule.close()  # never run
    assert curator_schedule(off, GitHubClients(off), *parts) is None
    assert curator_schedule(on, None, *parts) is None
