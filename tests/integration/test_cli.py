"""The `waooaw` command as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import fixture_path, load_payload
from tests.vision_support import GitRepo

WAOOAW = [sys.executable, "-m", "bot.cli"]


def run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "WAOOAW_", "ANTHROPIC_"))}
    clean.update({"WAOOAW_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", **env})
    return subprocess.run(WAOOAW + args, capture_output=True, text=True, env=clean, cwd=tmp_path, timeout=60)


def test_serve_refuses_to_start_without_a_secret(tmp_path):
    result = run(["serve"], tmp_path)
    assert result.returncode == 2
    assert "GITHUB_WEBHOOK_SECRET" in result.stderr and "--insecure-dev" in result.stderr


def test_worker_says_it_needs_redis(tmp_path):
    result = run(["worker"], tmp_path)
    assert result.returncode == 2 and "WAOOAW_REDIS_URL" in result.stderr


def test_db_upgrade_then_agents_list(tmp_path):
    assert run(["db", "upgrade"], tmp_path).returncode == 0
    listed = run(["agents", "list"], tmp_path)
    assert listed.returncode == 0
    rows = {line.split()[0]: line.split()[1:3] for line in listed.stdout.splitlines() if line.strip()}
    assert rows["concierge"] == ["active", "-"]  # a platform agent: no CoE
    assert rows["tech-support"] == ["active", "support"]  # a catalogue agent, from its spec


def test_replay_runs_the_whole_pipeline_and_prints_outputs_in_dry_run(tmp_path):
    payload = tmp_path / "status.json"
    payload.write_text(json.dumps(load_payload("issue_comment/created.payload.json", comment__body="/waooaw status")))
    result = run(["replay", str(payload), "--event", "issue_comment", "--delivery", "replay-1"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "━━ [dry run] concierge: comment on Codertocat/Hello-World#1 ━━" in result.stdout
    assert "   ⤷ <!-- waooaw:concierge:comment:status:1 -->" in result.stdout
    outcome = json.loads(result.stdout[result.stdout.index("{\n") :])
    assert outcome == {
        "delivery": "replay-1",
        "status": "done",
        "runs": [{"agent": "concierge", "attempt": 1, "status": "ok", "error": None}],
    }
    again = run(["replay", str(payload), "--event", "issue_comment", "--delivery", "replay-1"], tmp_path)
    assert json.loads(again.stdout[again.stdout.index("{\n") :])["status"] == "duplicate"
    assert "[dry run]" not in again.stdout


def comment_payload(tmp_path: Path, body: str) -> Path:
    payload = tmp_path / "comment.json"
    payload.write_text(json.dumps(load_payload("issue_comment/created.payload.json", comment__body=body)))
    return payload


def test_replay_of_a_help_comment_prints_the_answer_as_it_would_be_posted(tmp_path):
    result = run(["replay", str(comment_payload(tmp_path, "/waooaw help")), "--event", "issue_comment"], tmp_path)
    assert result.returncode == 0, result.stderr
    printed = result.stdout
    reaction = printed.index("━━ [dry run] concierge: reaction eyes on comment 492700400 in Codertocat/Hello-World ━━")
    answer = printed.index("━━ [dry run] concierge: comment on Codertocat/Hello-World#1 ━━")
    assert reaction < answer
    body = printed[answer:].split("\n", 1)[1]
    assert body.startswith("### WAOOAW — what you can ask here\n")
    assert "| `/waooaw help` | what you can ask WAOOAW on this repository | anyone |" in body
    assert (
        "| `/coe support [TASK]` | route this issue as one of the support CoE's tasks (bug-report, question, "
        "follow-up; the first by default) to one agent, by its RACI matrix | write access |"
    ) in body
    assert "note:" not in result.stderr


def test_replay_of_a_comment_without_a_command_says_why_nothing_woke(tmp_path):
    result = run(
        ["replay", str(fixture_path("issue_comment/created.payload.json")), "--event", "issue_comment"], tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["runs"] == []
    assert "note: no agent woke on this issue_comment payload" in result.stderr
    assert "`/waooaw help`" in result.stderr


@pytest.mark.parametrize("command", ["/wowvision recheck", "/wowvision ignore hygiene-print too noisy"])
def test_an_acting_command_is_refused_visibly_in_a_dry_run(tmp_path, command):
    # Without GitHub credentials nobody's write access can be checked: the refusal is what would be posted.
    result = run(["replay", str(comment_payload(tmp_path, command)), "--event", "issue_comment"], tmp_path)
    assert result.returncode == 0, result.stderr
    answer = result.stdout.index("━━ [dry run] wowvision: comment on Codertocat/Hello-World#1 ━━")
    refusal = result.stdout[answer:].split("\n")[1]
    assert refusal.startswith(
        f"Sorry @Codertocat, `{command}` needs write access to this repository, so I have not run it."
    )


@pytest.fixture
def clone(tmp_path: Path) -> GitRepo:
    """A clone whose branch `change` leaves a breakpoint and a print behind."""
    repo = GitRepo(tmp_path / "clone")
    repo.commit("start", {".github/waooaw.yml": "packs: [hygiene]\n", "app/main.py": "def main():\n    return 1\n"})
    repo.git("checkout", "-q", "-b", "change")
    repo.commit("debug", {"app/main.py": "def main():\n    breakpoint()\n    print('x')\n    return 2\n"})
    return repo


def assert_reviewed(printed: str, head: str) -> None:
    """The check run, the review with its inline comments and the summary comment, in that order."""
    check_run = printed.index(
        f"━━ [dry run] wowvision: check run 'WowVision' on Codertocat/Hello-World at {head[:7]}: failure ━━"
    )
    review = printed.index(
        f"━━ [dry run] wowvision: review COMMENT on Codertocat/Hello-World#2 at {head[:7]}, 2 inline comments ━━"
    )
    summary = printed.index("━━ [dry run] wowvision: comment on Codertocat/Hello-World#2 ━━")
    assert check_run < review < summary
    assert (
        "  failure  app/main.py:2  hygiene-breakpoint: A debugger breakpoint is left in the code"
        in printed[check_run:review]
    )
    inline = printed[review:summary]
    assert (
        "\n▸ app/main.py:2\n    **error** `hygiene-breakpoint` — A debugger breakpoint is left in the code\n" in inline
    )
    assert "\n▸ app/main.py:3\n    **notice** `hygiene-print` — print() in library code\n" in inline
    assert "| 🔴 error | `app/main.py:2` | `hygiene-breakpoint` |" in printed[summary:]


def test_replay_of_a_pull_request_reviews_the_change_of_a_local_clone(tmp_path, clone):
    payload = fixture_path("pull_request/opened.payload.json")  # its SHAs are not in the clone: HEAD and the merge-base
    result = run(["replay", str(payload), "--event", "pull_request", "--repo", str(clone.root)], tmp_path)
    assert result.returncode == 0, result.stderr
    head = clone.git("rev-parse", "HEAD")
    assert_reviewed(result.stdout, load_payload("pull_request/opened.payload.json")["pull_request"]["head"]["sha"])
    outcome = json.loads(result.stdout[result.stdout.index("{\n") :])
    assert outcome["clone"] == {"path": str(clone.root), "base": clone.git("rev-parse", "main"), "head": head}


def test_the_payloads_shas_name_the_change_when_the_clone_has_them(tmp_path, clone):
    base, head = clone.git("rev-parse", "main"), clone.git("rev-parse", "change")
    clone.git("checkout", "-q", "main")  # HEAD is not the change: the payload says which it is
    payload = tmp_path / "pull.json"
    payload.write_text(
        json.dumps(
            load_payload("pull_request/opened.payload.json", pull_request__base__sha=base, pull_request__head__sha=head)
        )
    )
    result = run(["replay", str(payload), "--event", "pull_request", "--repo", str(clone.root)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert_reviewed(result.stdout, head)


def test_replay_of_a_default_branch_push_prints_the_issue_per_rule(tmp_path, clone):
    # GitHub's before and after are not in the clone: --base names the change's start, HEAD its end.
    payload = tmp_path / "push.json"
    payload.write_text(
        json.dumps(
            load_payload("push/payload.json", ref="refs/heads/master", deleted=False, before="1" * 40, after="2" * 40)
        )
    )
    result = run(["replay", str(payload), "--event", "push", "--repo", str(clone.root), "--base", "main"], tmp_path)
    assert result.returncode == 0, result.stderr
    issue = result.stdout.index(
        "━━ [dry run] wowvision: issue in Codertocat/Hello-World (open) [wowvision]: "
        "WowVision: hygiene-breakpoint on the default branch ━━"
    )
    assert "\n- `app/main.py:2` — A debugger breakpoint is left in the code\n" in result.stdout[issue:]


def test_replay_of_a_pull_request_without_a_clone_says_how_to_review_it(tmp_path):
    result = run(["replay", str(fixture_path("pull_request/opened.payload.json")), "--event", "pull_request"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "[dry run]" not in result.stdout
    assert "note: without GitHub credentials WowVision cannot read the change: pass --repo PATH" in result.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--repo", "{tmp}"], "is not a git repository"),
        (["--repo", "{clone}", "--base", "no-such-ref"], "--base 'no-such-ref' is not a commit"),
        (["--base", "main"], "pass --repo PATH too"),
    ],
)
def test_replay_with_an_unusable_clone_or_ref_exits_2(tmp_path, clone, args, says):
    args = [arg.format(tmp=tmp_path / "empty", clone=clone.root) for arg in args]
    (tmp_path / "empty").mkdir()
    result = run(
        ["replay", str(fixture_path("pull_request/opened.payload.json")), "--event", "pull_request", *args], tmp_path
    )
    assert result.returncode == 2 and says in result.stderr and "Traceback" not in result.stderr


def test_replay_reads_a_clone_only_in_a_dry_run(tmp_path, clone):
    result = run(
        [
            "replay",
            str(fixture_path("pull_request/opened.payload.json")),
            "--event",
            "pull_request",
            "--repo",
            str(clone.root),
        ],
        tmp_path,
        GITHUB_TOKEN="ghp_unused",
    )
    assert result.returncode == 2 and "with GitHub credentials the agents read it from GitHub" in result.stderr


def test_replay_of_an_event_no_agent_wants_says_ignored(tmp_path):
    result = run(["replay", str(fixture_path("star/created.payload.json")), "--event", "star"], tmp_path)
    assert result.returncode == 0 and json.loads(result.stdout)["status"] == "ignored"


@pytest.mark.parametrize("content", ["{not json", "[]"])
def test_replay_of_a_malformed_file_is_a_clear_error(tmp_path, content):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    result = run(["replay", str(bad), "--event", "push"], tmp_path)
    assert result.returncode != 0 and "bad.json" in result.stderr and "JSON" in result.stderr


def test_serve_and_worker_refuse_an_invalid_agent_spec_with_its_line(tmp_path):
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "bad.yaml").write_text("spec: waooaw/agent/v1\nname: Bad\n")
    for command in ("serve", "worker"):
        result = run(
            [command],
            tmp_path,
            WAOOAW_AGENT_SPECS=str(specs),
            GITHUB_WEBHOOK_SECRET="x",
            WAOOAW_REDIS_URL="redis://127.0.0.1:6379/15",
        )
        assert result.returncode == 2, result.stderr
        assert "invalid agent specs, nothing started" in result.stderr
        assert f"{specs / 'bad.yaml'}:2: name:" in result.stderr
