"""`waooaw agents list|pause|resume|retire`: the catalogue, and each agent's state everywhere or on one repository."""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

from agents.events import Event
from bot.cli import app as cli
from bot.tenancy import apply
from tests.conftest import load_payload

REPO = "Codertocat/Hello-World"  # installation/created.payload.json installs the App on it


@pytest.fixture
def invoke(store, monkeypatch):
    for name in list(os.environ):
        if name.startswith(("WAOOAW_", "GITHUB_")):
            monkeypatch.delenv(name)
    # The command points structlog at stderr, which CliRunner closes afterwards.
    monkeypatch.setattr("bot.logging.configure", lambda level="INFO": None)
    monkeypatch.setenv("WAOOAW_DATABASE_URL", store.url)
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, list(args))


def installed(store) -> int:
    payload = load_payload("installation/created.payload.json")
    with store.session() as session:
        apply(session, Event.from_payload("d-install", "installation", payload))
    return payload["installation"]["id"]


def line_of(output: str, name: str) -> str:
    return next(line for line in output.splitlines() if line.split() and line.split()[0] == name)


def test_list_shows_each_agent_its_state_its_coe_and_whether_it_must_be_hired(invoke):
    listed = invoke("agents", "list")
    assert listed.exit_code == 0, listed.output
    assert line_of(listed.output, "concierge").split()[:4] == ["concierge", "active", "-", "on"]
    assert line_of(listed.output, "hiring").split()[:2] == ["hiring", "active"]


def test_pause_on_one_repository_then_everywhere_then_retire(invoke, store):
    installation = installed(store)
    assert invoke("agents", "pause", "wowvision", "--repo", REPO).output == f"wowvision: paused on {REPO}\n"
    listed = invoke("agents", "list", "--repo", REPO)
    assert listed.output.splitlines()[0] == f"{REPO} (installation {installation})"
    assert line_of(listed.output, "wowvision").split()[1:5] == ["engineering", "hired", "(default)", "paused"]
    assert "(here)" in line_of(listed.output, "wowvision")
    assert line_of(invoke("agents", "list").output, "wowvision").split()[1] == "active"  # elsewhere
    resumed = invoke("agents", "resume", "wowvision")
    assert resumed.output.splitlines() == [
        "wowvision: active everywhere",
        f"note: wowvision is paused on {REPO} (installation {installation}), which wins there",
    ]
    invoke("agents", "resume", "wowvision", "--repo", REPO)
    assert invoke("agents", "retire", "wowvision").exit_code == 0
    assert line_of(invoke("agents", "list").output, "wowvision").split()[1] == "retired"
    here = line_of(invoke("agents", "list", "--repo", REPO).output, "wowvision")
    assert "retired" in here and "(here)" not in here  # retired everywhere wins over the repository's own state


def test_an_unknown_agent_or_repository_is_exit_2(invoke, store):
    unknown = invoke("agents", "pause", "nobody")
    assert unknown.exit_code == 2 and "no agent named 'nobody'" in unknown.output and "concierge" in unknown.output
    stranger = invoke("agents", "retire", "wowvision", "--repo", "someone/else")
    assert stranger.exit_code == 2 and "someone/else is not a repository the App is installed on" in stranger.output
    assert invoke("agents", "list", "--repo", "not-a-repo").exit_code == 2


def test_list_on_a_repository_shows_each_agents_reputation_there(invoke, store):
    from agents.reputation import Outcome, record, scores, summary

    installation = installed(store)
    with store.session() as session:
        record(session, [Outcome(installation, REPO, "wowvision", "finding_fixed", "a.py:1:secrets")])
    with store.reading() as session:
        expected = summary(scores(session, installation, REPO)["wowvision"])
    listed = invoke("agents", "list", "--repo", REPO)
    assert expected.startswith("0.") and expected in line_of(listed.output, "wowvision")
    assert "—" in line_of(listed.output, "concierge")  # no outcome yet
