"""The cross-CoE flow end to end, on one conversation: a bug report (a real `issues.opened` payload) is
triaged by Technical Support (support), whose handoff goes to engineering; the engineering coordinator
routes the fix; the fix pull request gets WowVision's review and, merged, closes the task; on the
release (`release.published`) the marketing coordinator hands the release post to Content Marketing,
which drafts it naming the fix. Fake GitHub, fake Anthropic through the real SDK, the real worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from agents import hires
from agents.llm import LLMClient
from agents.store.tables import AgentMessage, InboxRecord, TaskAssignment
from bot.wiring import Platform
from tests.conftest import ROOT, load_payload
from tests.fakes.github import FakeGitHub
from tests.helpers import delivering, github_platform

REPO = "Codertocat/Hello-World"
INSTALLED = {"id": 1}
HEAD = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"  # pull_request/opened.payload.json's head
FIX = "README.md"
FIX_DIFF = (
    f"diff --git a/{FIX} b/{FIX}\n--- a/{FIX}\n+++ b/{FIX}\n"
    "@@ -1,2 +1,2 @@\n # Hello World\n-Spell commmit\n+Spell commit\n"
)


def test_a_bug_goes_from_support_to_engineering_to_the_release_post_on_one_conversation(
    store, fake_anthropic, tmp_path
):
    claude = fake_anthropic
    with FakeGitHub() as fake:
        fake.set_permission("Codertocat", "admin")
        for name in ("bug", "question", "needs-info"):
            fake.add_repo_label(REPO, name)
        fake.files[(REPO, fake.default_branch, "README.md")] = b"# Hello World\nSpell commmit\n"
        fake.add_release(REPO, "v0.0.0", published_at=datetime.now(UTC) - timedelta(days=7))
        with store.session() as session:  # hired here (what the config's `agents.enable` does)
            hires.apply_config(session, 1, REPO, enable=["tech-support", "content-marketing"], disable=(), budgets={})

        def with_claude() -> Platform:
            built = github_platform(store, fake.url)
            built.llm = LLMClient("test-key", "claude-sonnet-5-5", base_url=claude.url)
            return built

        with delivering(lambda: github_platform(store, fake.url)) as deliver:
            # 1. The bug report: Technical Support confirms it and hands it to engineering.
            text = "It says commmit; version 1.0, see the README."
            issue = fake.add_issue(REPO, "Spelling error in the README file", text)
            triage = {"kind": "bug-confirmed", "reply": "Thanks, confirmed.", "labels": ["bug"]}
            claude.answer({**triage, "duplicates": [], "docs": []})
            opened = load_payload("issues/opened.payload.json", installation=INSTALLED)
            assert opened["issue"]["number"] == issue["number"] == 1
            deliver("issues", opened, "bug-report", worker=with_claude)
            assert [label["name"] for label in fake.issues[(REPO, 1)]["labels"]] == ["bug"]

            # 2. The fix: a pull request that closes the issue, reviewed by WowVision, then merged.
            pull = fake.add_pull(REPO, "fix-spelling", fake.default_branch, "Fix the spelling of commit", "Fixes #1")
            assert pull["number"] == 2
            fake.pull_diffs[(REPO, 2)] = FIX_DIFF
            fake.files[(REPO, HEAD, FIX)] = b"# Hello World\nSpell commit\n"
            opened_pr = load_payload("pull_request/opened.payload.json", pull_request__body="Fixes #1")
            deliver("pull_request", opened_pr, "fix-opened")
            assert len(fake.check_runs) == 1  # WowVision's review of the fix
            fake.merge_pull(REPO, 2)
            closed = load_payload("pull_request/closed.payload.json", pull_request__body="Fixes #1")
            closed["pull_request"].update(merged=True, state="closed")
            deliver("pull_request", closed, "fix-merged")

            # 3. The release: the marketing coordinator hands the post to Content Marketing.
            claude.answer(
                {
                    "slug": "release-0-0-1",
                    "title": "0.0.1: the README spells commit",
                    "post": "---\ntitle: 0.0.1\n---\nThe README now spells commit right (#2, fixing #1).",
                    "changelog": "## 0.0.1\n- Fix the spelling of commit (#2)",
                }
            )
            fake.add_release(REPO, "0.0.1")  # published: the latest release is this one now
            released = load_payload("release/published.payload.json", installation=INSTALLED)
            deliver("release", released, "release", worker=with_claude)

    with store.reading() as session:
        sent = session.scalars(select(AgentMessage).order_by(AgentMessage.id)).all()
        inbox = session.scalars(select(InboxRecord).where(InboxRecord.event == "agent_message"))
        recorded = [json.loads(row.body) for row in inbox]
        tasks = {row.coe: row for row in session.scalars(select(TaskAssignment))}
    (correlation,) = {m.correlation_id for m in sent}  # one conversation across all of it
    flow = [(m.kind, m.sender, m.addressee) for m in sent]
    assert flow[0] == ("handoff", "tech-support", "engineering:bug-fix")
    assert ("handoff", "engineering-coordinator", "engineering:developer") in flow  # people write the fix
    assert ("request", "engineering-coordinator", "wowvision") in flow  # accountable: review, then sign off
    assert ("inform", "engineering-coordinator", "marketing:coordinator") in flow
    assert ("handoff", "marketing-coordinator", "content-marketing") in flow
    assert ("request", "marketing-coordinator", "brand-strategy") in flow
    bodies = [m.body for m in sent if m.sender == "engineering-coordinator" and m.addressee == "wowvision"]
    assert [b.get("review") for b in bodies] == [None, True, None]  # sign off; review #2; sign off after the merge
    assert bodies[1]["pull_request"] == 2 and bodies[2]["result"] == {"merged": True}
    assert bodies[2]["head_sha"] == HEAD
    # WowVision, Accountable, signs the merged fix off with its verdict on the head it reviewed: its check run's.
    (verdict,) = [m.body for m in sent if m.kind == "result" and m.sender == "wowvision"]
    assert [m.addressee for m in sent if m.kind == "result" and m.sender == "wowvision"] == ["engineering-coordinator"]
    assert (verdict["pull_request"], verdict["head_sha"]) == (2, HEAD)
    (check_run,) = fake.check_runs.values()
    assert (check_run["head_sha"], verdict["conclusion"]) == (HEAD, check_run["conclusion"])

    engineering, marketing = tasks["engineering"], tasks["marketing"]
    assert (engineering.task_key, engineering.state, engineering.pull_number, engineering.release) == (
        "bug-fix:#1",
        "done",
        2,
        "0.0.1",
    )
    assert (marketing.task_key, marketing.responsible, marketing.correlation_id) == (
        "release-post:0.0.1",
        "content-marketing",
        correlation,
    )
    handoff = next(m for m in sent if m.addressee == "content-marketing")
    assert handoff.body["request"]["fixes"] == [{"issue": 1, "pull_request": 2, "correlation_id": correlation}]

    # Its golden examples' handoff is shaped as the edge records one.
    handed = next(p for p in recorded if p["message"]["to"] == "content-marketing")
    example = json.loads((ROOT / "agents/specs/marketing/examples/agent_message.handoff.release-post.json").read_text())
    assert _shape(handed) == _shape(example)

    # Content Marketing's draft names the fix: the release, its address and the pull requests merged
    # between the previous release and it (read for the release the handoff names) were in its prompt.
    prompt = claude.messages[-1].json["messages"][0]["content"]
    assert "- #2 <untrusted_input>\nFix the spelling of commit\n" in prompt
    assert "https://github.com/Codertocat/Hello-World/releases/tag/0.0.1" in prompt
    assert "- issue #1, fixed by #2\n" in prompt
    posted = [c for c in fake.commits if c["path"] == "blog/release-0-0-1.md"]
    assert posted and b"(#2, fixing #1)" in posted[-1]["content"]

    # `waooaw messages list --correlation ID` shows the whole conversation.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "WAOOAW_"))}
    listed = subprocess.run(
        [sys.executable, "-m", "bot.cli", "messages", "list", "--correlation", correlation, "--limit", "100"],
        env={**env, "WAOOAW_DATABASE_URL": store.url, "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()[2:]
    assert len(lines) == len(sent) and all(correlation in line for line in lines)
    assert lines[0].split()[2:6] == ["handoff", "tech-support", "→", "engineering:bug-fix"]
    assert any("marketing-coordinator → content-marketing" in line and "handled" in line for line in lines)


def _shape(value: Any) -> Any:
    """A JSON value's keys and types, not its values."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value[:1]]
    return type(value).__name__
