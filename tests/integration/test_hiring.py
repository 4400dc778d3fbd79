"""Hiring in the app, in-process: deliveries through intake and the worker on the real store, the
fake GitHub on loopback serving the config and taking the hire pull requests.

An agent that must be hired wakes on a repository only once the default branch's
`.github/waooaw.yml` enables it, and on no other; `/waooaw hire` opens the pull request
whose merge is that decision; paused and retired agents never wake.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from agents import hires
from agents.base import WowAgent
from agents.events import Event
from agents.outputs import Comment, Output
from agents.registry import Lifecycle
from agents.store.tables import AgentHire, AgentRun
from agents.vision.config import CONFIG_PATH
from bot.wiring import Platform
from tests.conftest import load_payload
from tests.fakes.github import FakeGitHub
from tests.helpers import Accepted, Deliver, delivering, github_platform

REPO, OTHER = "Codertocat/Hello-World", "Codertocat/Space"
INSTALLATION = 1  # the installation of the fixtures below
BRANCH = "master"  # their repository's default branch


class Helper(WowAgent):
    """A stand-in for a spec agent: off until hired."""

    name = "helper"
    coe = "support"
    description = "answers new issues"
    hire_required = True
    wakes_on = ("issues.opened",)

    async def execute(self, event: Event) -> list[Output]:
        assert event.repo is not None and event.issue_number is not None
        return [Comment(event.repo, event.issue_number, "hello", key="hello")]


@pytest.fixture
def world(store) -> Iterator[tuple[FakeGitHub, Deliver, Platform]]:
    with FakeGitHub() as fake:
        fake.default_branch = BRANCH
        fake.set_permission("Codertocat", "write")

        def platform() -> Platform:
            built = github_platform(store, fake.url, GITHUB_APP_BOT_USER_ID=fake.bot["id"])
            built.registry.register(Helper)
            return built

        # WowVision reviews the same pushes: not what these tests look at.
        platform().registry.set_state("wowvision", Lifecycle.RETIRED)
        with delivering(platform) as deliver:
            yield fake, deliver, platform()


def opened(repo: str = REPO) -> dict[str, Any]:
    payload = load_payload("issues/opened.payload.json", installation={"id": INSTALLATION})
    payload["repository"]["full_name"] = repo
    return payload


def pushed(after: str, *, touched: tuple[str, ...] = (CONFIG_PATH,)) -> dict[str, Any]:
    """The default branch moved to `after`, by a commit that modified `touched`."""
    payload = load_payload("push/with-new-branch.payload.json", created=False, before="1" * 40, after=after)
    payload["commits"][0].update(added=[], modified=list(touched), removed=[])
    return payload


def comment(text: str) -> dict[str, Any]:
    return load_payload("issue_comment/created.with-installation.payload.json", comment__body=text)


def ran(store, delivered: Accepted) -> list[tuple[str, str]]:
    with store.session() as session:
        rows = session.scalars(
            select(AgentRun).where(AgentRun.delivery_id == delivered.delivery).order_by(AgentRun.agent)
        )
        return [(row.agent, row.status) for row in rows]


def test_a_hired_agent_wakes_on_its_repo_only_after_the_push_that_enables_it(world, store):
    fake, deliver, _ = world
    assert ran(store, deliver("issues", opened())) == []  # not hired yet
    fake.files[(REPO, BRANCH, CONFIG_PATH)] = b"# who works here\nagents:\n  enable: [helper]\n"
    assert ran(store, deliver("push", pushed("2" * 40))) == [("hiring", "ok")]
    assert ran(store, deliver("issues", opened())) == [("helper", "ok")]
    assert ran(store, deliver("issues", opened(OTHER))) == []  # hired on one repository, not the other
    assert [c.json["body"].split("\n")[0] for c in fake.calls("POST", r"/issues/\d+/comments$")] == ["hello"]


def test_a_push_that_does_not_touch_the_config_wakes_no_hiring(world, store):
    fake, deliver, _ = world
    fake.files[(REPO, BRANCH, CONFIG_PATH)] = b"agents: {enable: [helper]}\n"
    assert ran(store, deliver("push", pushed("2" * 40, touched=("README.md",)))) == []
    assert ran(store, deliver("issues", opened())) == []


def test_disabling_in_the_config_turns_a_python_agent_off_there(world, store):
    fake, deliver, platform = world
    fake.files[(REPO, BRANCH, CONFIG_PATH)] = b"agents:\n  disable: [concierge]\n"
    deliver("push", pushed("2" * 40))
    assert ran(store, deliver("issue_comment", comment("/waooaw help"))) == []
    with store.session() as session:
        standing = platform.registry.standings(session, INSTALLATION, REPO)["concierge"]
    assert (standing.hired, standing.hired_by, standing.wakes) == (False, "config", False)


def test_a_config_naming_an_unknown_agent_changes_nothing_and_says_which_line(world, store):
    fake, deliver, _ = world
    fake.files[(REPO, BRANCH, CONFIG_PATH)] = b"agents: {enable: [helper]}\n"
    deliver("push", pushed("2" * 40))
    fake.files[(REPO, BRANCH, CONFIG_PATH)] = b"review: COMMENT\nagents:\n  enable:\n    - nobody\n"
    deliver("push", pushed("3" * 40))
    assert ran(store, deliver("issues", opened())) == [("helper", "ok")]  # still hired as before
    (created,) = fake.calls("POST", r"/issues$")
    assert "waooaw.yml:4" in created.json["body"] and "no agent named 'nobody'" in created.json["body"]
    fake.files[(REPO, BRANCH, CONFIG_PATH)] = b"agents: {enable: []}\n"
    deliver("push", pushed("4" * 40))
    assert fake.calls("PATCH", r"/issues/\d+$")[-1].json["state"] == "closed"  # fixed: the issue is closed
    assert ran(store, deliver("issues", opened())) == []


def test_installing_the_app_applies_each_repositorys_config(world, store):
    fake, deliver, _ = world
    payload = load_payload("installation/created.payload.json")
    fake.files[(REPO, BRANCH, CONFIG_PATH)] = b"agents:\n  enable: [helper]\n  budgets: {helper: 0.25}\n"
    deliver("installation", payload)
    with store.session() as session:
        row = session.scalars(select(AgentHire)).one()
    assert (row.installation_id, row.repo, row.agent, row.hired, row.budget_usd) == (
        payload["installation"]["id"],
        REPO,
        "helper",
        True,
        0.25,
    )


@pytest.mark.parametrize("everywhere", [False, True])
def test_a_paused_agent_never_wakes_and_resumes_where_it_is_resumed(world, store, everywhere):
    fake, deliver, platform = world
    fake.files[(REPO, BRANCH, CONFIG_PATH)] = b"agents: {enable: [helper]}\n"
    deliver("push", pushed("2" * 40))
    platform.registry.set_state("helper", Lifecycle.PAUSED, repos=[] if everywhere else [(INSTALLATION, REPO)])
    assert ran(store, deliver("issues", opened())) == []
    # A repository's own state wins over the state everywhere.
    platform.registry.set_state("helper", Lifecycle.ACTIVE, repos=[(INSTALLATION, REPO)])
    assert ran(store, deliver("issues", opened())) == [("helper", "ok")]


def test_retired_everywhere_wins_over_a_repositorys_own_state(world, store):
    fake, deliver, platform = world
    fake.files[(REPO, BRANCH, CONFIG_PATH)] = b"agents: {enable: [helper]}\n"
    deliver("push", pushed("2" * 40))
    platform.registry.set_state("helper", Lifecycle.ACTIVE, repos=[(INSTALLATION, REPO)])
    platform.registry.set_state("helper", Lifecycle.RETIRED)
    assert ran(store, deliver("issues", opened())) == []
    with store.session() as session:
        assert hires.overrides(session, "helper") == [(INSTALLATION, REPO, Lifecycle.ACTIVE)]
        assert platform.registry.standings(session, INSTALLATION, REPO)["helper"].state is Lifecycle.RETIRED


def test_hire_opens_one_pull_request_editing_the_config_and_merging_it_hires(world, store):
    fake, deliver, _ = world
    before = b"# kept as written\npacks: [secrets]   # only this one\nagents:\n  disable:\n    - wowvision\n"
    fake.files[(REPO, BRANCH, CONFIG_PATH)] = before
    first = deliver("issue_comment", comment("/waooaw hire helper"))
    deliver("issue_comment", comment("/waooaw hire helper"), delivery=first.delivery)  # GitHub's redelivery
    deliver("issue_comment", comment("/waooaw hire helper"))  # asked again
    (pull,) = fake.pull_requests
    assert pull["head"]["ref"] == "waooaw/hire-helper" and pull["base"]["ref"] == BRANCH
    proposed = fake.files[(REPO, "waooaw/hire-helper", CONFIG_PATH)].decode()
    assert proposed == before.decode() + "  enable:\n    - helper\n"
    assert len(fake.commits) == 1
    replies = fake.calls("POST", r"/issues/\d+/comments$")
    assert len(replies) == 1 and "merging it is the decision" in replies[0].json["body"]
    assert ran(store, deliver("issues", opened())) == []
    deliver("push", pushed(fake.merge_pull(REPO, pull["number"])))
    assert ran(store, deliver("issues", opened())) == [("helper", "ok")]
    assert ran(store, deliver("issues", opened(OTHER))) == []


def test_fire_opens_the_pull_request_that_disables_a_python_agent(world):
    fake, deliver, _ = world
    deliver("issue_comment", comment("/waooaw fire wowvision"))
    (pull,) = fake.pull_requests
    assert fake.files[(REPO, "waooaw/fire-wowvision", CONFIG_PATH)] == b"agents:\n  disable:\n    - wowvision\n"
    assert pull["title"] == "WAOOAW: fire wowvision"


def test_hire_without_write_access_is_refused_politely(world):
    fake, deliver, _ = world
    fake.set_permission("Codertocat", "read")
    deliver("issue_comment", comment("/waooaw hire helper"))
    assert fake.pull_requests == []
    (reply,) = fake.calls("POST", r"/issues/\d+/comments$")
    assert "needs write access" in reply.json["body"]


def test_hiring_an_unknown_agent_lists_the_catalogue(world):
    fake, deliver, _ = world
    deliver("issue_comment", comment("/waooaw hire nobody"))
    assert fake.pull_requests == []
    (reply,) = fake.calls("POST", r"/issues/\d+/comments$")
    body = reply.json["body"]
    assert "no agent named `nobody`" in body
    assert "| `helper` | support | answers new issues |" in body and "`wowvision`" in body


def test_hiring_an_agent_hired_already_opens_nothing(world):
    fake, deliver, _ = world
    fake.files[(REPO, BRANCH, CONFIG_PATH)] = b"agents: {enable: [helper]}\n"
    deliver("issue_comment", comment("/waooaw hire helper"))
    assert fake.pull_requests == []
    (reply,) = fake.calls("POST", r"/issues/\d+/comments$")
    assert "is hired here already" in reply.json["body"]


def test_status_and_help_show_each_agents_marketplace_and_hired_identity(world, store):
    fake, deliver, platform = world

    def answer(verb: str) -> str:
        deliver("issue_comment", comment(f"/waooaw {verb}"))
        return fake.calls("POST", r"/issues/\d+/comments$")[-1].json["body"]

    status = answer("status")
    assert "| `helper` | support | answers new issues | not hired (`/waooaw hire helper`) |" in status
    assert "| `concierge` | — | Answers /waooaw help and /waooaw status | on by default, active |" in status
    fake.files[(REPO, BRANCH, CONFIG_PATH)] = b"agents:\n  enable: [helper]\n  budgets: {helper: 0.5}\n"
    deliver("push", pushed("2" * 40))
    platform.registry.set_state("helper", Lifecycle.PAUSED, repos=[(INSTALLATION, REPO)])
    help_text = answer("help")
    assert "| `helper` | support | answers new issues | hired, paused here, $0.5 budget |" in help_text
    assert "| `/waooaw hire NAME` | a pull request that hires an agent on this repository | write access |" in help_text
