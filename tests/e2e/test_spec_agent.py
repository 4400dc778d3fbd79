"""A spec agent end to end: signed real `issues` payloads → intake → worker → the triager spec
(tests/fixtures/specs) → its reads from the fake GitHub → Claude (the fake Anthropic, through the
real SDK) → a comment and labels on the fake GitHub, each decision in the ledger."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from agents.catalog import default_registry
from agents.llm import LLMClient
from agents.store.db import Store
from agents.store.tables import Decision
from bot.wiring import Platform
from tests.conftest import load_payload
from tests.fakes.github import FakeGitHub
from tests.helpers import Deliver, delivering, github_platform

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "tests/fixtures/specs"
REPO = "Codertocat/Hello-World"
INSTALLED = {"id": 1}  # the installation of the push that hires the agent (a spec agent works where hired)
README = "# Hello World\n\nSpell `commit` with one t.\n"


def platform_for(store: Store, fake: FakeGitHub, claude_url: str | None) -> Platform:
    platform = github_platform(store, fake.url)
    platform.registry = default_registry(store, spec_dirs=[SPECS])
    if claude_url is not None:
        platform.llm = LLMClient("test-key", "claude-sonnet-5-5", base_url=claude_url)
    return platform


@pytest.fixture
def world(store: Store, fake_anthropic: Any) -> Iterator[tuple[FakeGitHub, Any, Callable[..., Deliver]]]:
    with FakeGitHub() as fake:
        fake.files[(REPO, fake.default_branch, "README.md")] = README.encode()
        # A repository hires a spec agent in its config on the default branch.
        # (the push below is to the payload repository's default branch, "master")
        fake.files[(REPO, "master", ".github/waooaw.yml")] = b"agents:\n  enable: [triager]\n"
        for name in ("bug", "question", "needs-info"):
            fake.add_repo_label(REPO, name)

        pushed = load_payload("push/with-new-branch.payload.json", created=False, before="1" * 40, after="2" * 40)
        pushed["commits"][0].update(added=[], modified=[".github/waooaw.yml"], removed=[])
        config_diff = (
            "diff --git a/.github/waooaw.yml b/.github/waooaw.yml\n"
            "--- /dev/null\n+++ b/.github/waooaw.yml\n@@ -0,0 +1,2 @@\n+agents:\n+  enable: [triager]\n"
        )
        fake.compare_diffs[(REPO, "1" * 40, "2" * 40)] = config_diff  # what WowVision reviews of that push

        with delivering(partial(platform_for, store, fake, None)) as deliver:
            deliver("push", pushed, "hire-push")

            def connect(claude: bool = True) -> Deliver:
                """Deliveries drained by a worker with Claude, or with no API key."""
                claude_url = fake_anthropic.url if claude else None
                return partial(deliver, worker=partial(platform_for, store, fake, claude_url))

            yield fake, fake_anthropic, connect


def comments(fake: FakeGitHub, marker: str) -> list[dict[str, Any]]:
    return [c for c in fake.comments.values() if marker in c["body"]]


def decisions(store: Store) -> list[tuple[str, str, str]]:
    with store.reading() as session:
        rows = session.execute(select(Decision.agent, Decision.rule, Decision.rung).order_by(Decision.id)).all()
    return [tuple(row) for row in rows if row[0] == "triager"]  # type: ignore[misc]


def test_a_new_issue_gets_claudes_triage_as_a_comment_and_allowed_labels(world, store):
    fake, claude, connect = world
    issue = fake.add_issue(REPO, "Spelling error in the README file", "It says 'commmit'.")
    claude.answer({"kind": "bug", "reply": "A typo: it should read 'commit'. @octo-org/all", "labels": ["bug", "p0"]})

    assert (
        connect()("issues", load_payload("issues/opened.payload.json", installation=INSTALLED), "spec-1").status
        == "queued"
    )

    [comment] = comments(fake, "<!-- waooaw:triager:comment:triager:1 -->")
    assert "**Triage: bug**" in comment["body"] and "A typo: it should read" in comment["body"]
    assert "@octo-org/all" not in comment["body"]  # the answer is inert Markdown: no team pinged
    labels = [label["name"] for label in fake.issues[(REPO, issue["number"])]["labels"]]
    assert labels == ["bug"]  # `p0` is not in the spec's allowed list: refused, never published
    [call] = claude.messages
    prompt = call.json["messages"][0]["content"]
    assert "Spell `commit` with one t." in prompt and "<untrusted_input>" in prompt  # the README it read
    assert call.json["tools"][0]["input_schema"]["required"] == ["kind", "reply", "labels"]
    assert decisions(store) == [("triager", "answer", "llm")]


def test_a_redelivery_posts_nothing_twice_and_the_same_prompt_is_answered_from_the_cache(world, store):
    fake, claude, connect = world
    fake.add_issue(REPO, "Spelling error in the README file", "It says 'commmit'.")
    claude.answer({"kind": "bug", "reply": "A typo.", "labels": ["bug"]})
    deliver = connect()
    deliver("issues", load_payload("issues/opened.payload.json", installation=INSTALLED), "spec-1")
    assert (
        deliver("issues", load_payload("issues/opened.payload.json", installation=INSTALLED), "spec-1").status
        == "duplicate"
    )
    deliver(
        "issues", load_payload("issues/opened.payload.json", installation=INSTALLED), "spec-2"
    )  # a new delivery of the same issue
    assert len(comments(fake, "waooaw:triager:comment:triager:1")) == 1 and len(claude.messages) == 1
    assert [rung for *_, rung in decisions(store)] == ["llm", "cached"]


def test_an_empty_issue_is_settled_by_the_deterministic_rule_without_claude(world, store):
    fake, claude, connect = world
    fake.add_issue(REPO, "Spelling error in the README file", None)
    connect()(
        "issues", load_payload("issues/opened.with-empty-body.payload.json", installation=INSTALLED), "spec-empty"
    )
    [comment] = comments(fake, "waooaw:triager:comment:triager:1")
    assert "what you expected" in comment["body"] and claude.messages == []
    assert [label["name"] for label in fake.issues[(REPO, 1)]["labels"]] == ["needs-info"]
    assert decisions(store) == [("triager", "answer", "deterministic")]


def test_without_an_api_key_the_rung_is_skipped_and_nothing_is_posted(world, store):
    fake, _, connect = world
    fake.add_issue(REPO, "Spelling error in the README file", "It says 'commmit'.")
    connect(claude=False)("issues", load_payload("issues/opened.payload.json", installation=INSTALLED), "spec-nokey")
    assert comments(fake, "waooaw:triager") == [] and fake.issues[(REPO, 1)]["labels"] == []
    assert decisions(store) == [("triager", "answer", "skipped")]


def test_its_command_in_a_comment_wakes_it(world, store):
    fake, claude, connect = world
    fake.add_issue(REPO, "Spelling error in the README file", "It says 'commmit'.")
    claude.answer({"kind": "question", "reply": "See the README.", "labels": ["question"]})
    payload = load_payload("issue_comment/created.payload.json", comment__body="/triage", installation=INSTALLED)
    connect()("issue_comment", payload, "spec-command")
    [comment] = comments(fake, "waooaw:triager:comment:triager:1")
    assert "Triage: question" in comment["body"]
    assert [label["name"] for label in fake.issues[(REPO, 1)]["labels"]] == ["question"]


def test_its_hired_identitys_budget_on_the_repository_holds_it_to_the_deterministic_rung(world, store):
    fake, claude, connect = world
    fake.add_issue(REPO, "Spelling error in the README file", "It says 'commmit'.")
    claude.answer({"kind": "bug", "reply": "A typo.", "labels": ["bug"]})
    deliver = connect()
    # The repository gives the agent no money: the config's agents.budgets, applied by the next push.
    fake.files[(REPO, "master", ".github/waooaw.yml")] = b"agents:\n  enable: [triager]\n  budgets: {triager: 0}\n"
    pushed = load_payload("push/with-new-branch.payload.json", created=False, before="2" * 40, after="3" * 40)
    pushed["commits"][0].update(added=[], modified=[".github/waooaw.yml"], removed=[])
    fake.compare_diffs[(REPO, "2" * 40, "3" * 40)] = ""
    deliver("push", pushed, "budget-push")

    deliver("issues", load_payload("issues/opened.payload.json", installation=INSTALLED), "spec-budget")

    assert claude.messages == [] and comments(fake, "waooaw:triager") == []
    assert decisions(store) == [("triager", "answer", "skipped")]
