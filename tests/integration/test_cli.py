"""The `waooaw` command as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import fixture_path, load_payload

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
    assert listed.stdout.split()[:2] == ["concierge", "active"]


def test_replay_runs_the_whole_pipeline_and_prints_outputs_in_dry_run(tmp_path):
    payload = tmp_path / "status.json"
    payload.write_text(json.dumps(load_payload("issue_comment/created.payload.json", comment__body="/waooaw status")))
    result = run(["replay", str(payload), "--event", "issue_comment", "--delivery", "replay-1"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "[dry-run] concierge → comment <!-- waooaw:concierge:comment:status:1 -->" in result.stdout
    outcome = json.loads(result.stdout[result.stdout.index("{\n"):])
    assert outcome == {
        "delivery": "replay-1",
        "status": "done",
        "runs": [{"agent": "concierge", "attempt": 1, "status": "ok", "error": None}],
    }
    again = run(["replay", str(payload), "--event", "issue_comment", "--delivery", "replay-1"], tmp_path)
    assert json.loads(again.stdout[again.stdout.index("{\n"):])["status"] == "duplicate"
    assert "[dry-run]" not in again.stdout


def test_replay_of_an_event_no_agent_wants_says_ignored(tmp_path):
    result = run(["replay", str(fixture_path("star/created.payload.json")), "--event", "star"], tmp_path)
    assert result.returncode == 0 and json.loads(result.stdout)["status"] == "ignored"


@pytest.mark.parametrize("content", ["{not json", "[]"])
def test_replay_of_a_malformed_file_is_a_clear_error(tmp_path, content):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    result = run(["replay", str(bad), "--event", "push"], tmp_path)
    assert result.returncode != 0 and "bad.json" in result.stderr and "JSON" in result.stderr
