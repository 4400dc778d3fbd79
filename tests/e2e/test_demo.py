"""`waooaw demo` as a newcomer runs it: one command, offline, no keys — a review, an answer, a spec, a report."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The CLI, with an audit hook that refuses (and reports) any socket to, or name lookup of, another host.
GUARDED_CLI = """
import atexit, ipaddress, sys

refused = []
atexit.register(lambda: refused and print("NETWORK: " + "; ".join(refused), file=sys.stderr))

def local(host):
    host = host.decode() if isinstance(host, bytes) else str(host)
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

def guard(event, args):
    address = args[1] if event == "socket.connect" else (args[0], args[1]) if event == "socket.getaddrinfo" else None
    if isinstance(address, tuple) and address[0] is not None and not local(address[0]):
        refused.append(f"{event} {address[0]}")
        raise PermissionError(f"the demo reached for {address[0]}")

sys.addaudithook(guard)
from bot.cli import app
app(prog_name="waooaw")
"""


def demo(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "WAOOAW_", "ANTHROPIC_", "GIT_"))}
    dead = "http://127.0.0.1:9"  # nothing listens there: a request sent through a proxy fails
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "HTTP_PROXY": dead,
            "HTTPS_PROXY": dead,
            "ALL_PROXY": dead,
            # What a user's shell may hold: the demo must use none of it.
            "GITHUB_TOKEN": "ghp_not-for-the-demo",
            "WAOOAW_REDIS_URL": "redis://192.0.2.1:6379/0",
            "WAOOAW_DATABASE_URL": f"sqlite:///{cwd / 'users-own.db'}",
        }
    )
    return subprocess.run(
        [sys.executable, "-c", GUARDED_CLI, "demo", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=60
    )  # the demo's promise: under a minute


def line_of(printed: str, label: str) -> str:
    return next(line for line in printed.splitlines() if line.startswith(f"{label} ")).removeprefix(label).strip()


def test_the_demo_shows_a_review_an_answer_a_spec_and_a_report_offline(tmp_path):
    result = demo(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "NETWORK" not in result.stderr and "Traceback" not in result.stderr
    printed = result.stdout
    assert "The model is SCRIPTED, not Claude" in printed

    assert line_of(printed, "review") == (
        "waooaw-demo/sample-shop#1: check run WowVision failure, review "
        "REQUEST_CHANGES with 4 inline comments, summary comment"
    )
    review = printed.index("━━ [dry run] wowvision: review REQUEST_CHANGES on waooaw-demo/sample-shop#1")
    assert "\n▸ shop/DiscountRules.py:10\n    **error** `hygiene-breakpoint`" in printed[review:]
    assert "\n▸ shop/prices.py:9\n    **warning** `architecture-swallowed-errors`" in printed[review:]  # the LLM rung

    assert line_of(printed, "answer") == "waooaw-demo/sample-shop#2: /waooaw help answered in one comment"
    answer = printed.index("━━ [dry run] concierge: comment on waooaw-demo/sample-shop#2 ━━")
    assert printed[answer:].split("\n")[1] == "### WAOOAW — what you can ask here"

    spec_md, spec_yaml = (
        tmp_path / path for path in line_of(printed, "spec").split(", in the pull request")[0].split(", ")
    )
    assert spec_md == tmp_path / "waooaw-demo/domains/digital-marketing/spec.md"
    assert "Digital Marketing" in spec_md.read_text() and spec_yaml.exists()
    assert "━━ [dry run] wowdomain: pull request in waooaw-demo/sample-shop" in printed

    report = tmp_path / line_of(printed, "report").split(" (charts: ")[0]
    assert report.parent == tmp_path / "waooaw-demo/reports/daily" and report.suffix == ".md"
    assert "# WAOOAW daily report" in report.read_text()
    assert sorted(p.name for p in report.parent.glob("*.png")) == [
        f"{report.stem}-cost.png",
        f"{report.stem}-decisions.png",
    ]

    assert not (tmp_path / "users-own.db").exists() and not (tmp_path / "waooaw.db").exists()
    assert (tmp_path / "waooaw-demo/demo.db").exists()


def test_the_demo_keeps_away_from_a_directory_of_someone_elses(tmp_path):
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine")
    result = demo(tmp_path, "--out", str(theirs))
    assert result.returncode == 2 and "holds files that are not an earlier demo's" in result.stderr
    assert [p.name for p in theirs.iterdir()] == ["notes.txt"]
