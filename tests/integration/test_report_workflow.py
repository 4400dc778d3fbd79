"""scripts/daily_report.sh, what the daily-report workflow runs: in a scratch git clone, against the
real PostgreSQL store and the fake GitHub — it fills a skipped day, posts, commits and pushes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.fakes.github import FakeGitHub
from tests.integration.report_seed import seed

ROOT = Path(__file__).resolve().parents[2]
WAOOAW = str(Path(sys.executable).parent / "waooaw")
REPO = "octo/alpha"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A clone of a bare 'origin', holding the script and one report from four days ago."""
    if shutil.which("git") is None:
        pytest.fail("git is not installed: the report workflow commits with it", pytrace=False)
    origin, work = tmp_path / "origin.git", tmp_path / "work"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    git(tmp_path, "clone", "-q", str(origin), str(work))
    (work / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "daily_report.sh", work / "scripts" / "daily_report.sh")
    return work


def test_the_workflow_script_reports_skipped_days_posts_and_pushes(pg_store, checkout):
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date()
    seed(pg_store, yesterday, scale=1)
    earlier = yesterday - timedelta(days=3)
    (checkout / "reports" / "daily").mkdir(parents=True)
    (checkout / "reports" / "daily" / f"{earlier}.md").write_text("# the last report before two skipped runs\n")
    git(checkout, "add", ".")
    git(checkout, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "start")
    git(checkout, "push", "-q", "-u", "origin", "HEAD")

    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "WAOOAW_"))}
    with FakeGitHub() as fake:
        env.update(
            WAOOAW=WAOOAW,
            GITHUB_REPOSITORY=REPO,
            GITHUB_TOKEN="ghs_test",
            GITHUB_API_URL=fake.url,
            WAOOAW_DATABASE_URL=pg_store.url,
            WAOOAW_API_URL="",
            WAOOAW_API_TOKEN="",
            RUNNER_TEMP=str(checkout.parent),
        )
        result = subprocess.run(
            ["bash", "scripts/daily_report.sh"], cwd=checkout, env=env, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, result.stdout + result.stderr
        issues = {issue["title"]: issue["state"] for issue in fake.issues.values()}

    days = [yesterday - timedelta(days=n) for n in (2, 1, 0)]
    assert issues == {f"WAOOAW daily report — {d}": "closed" if d != yesterday else "open" for d in days}
    pushed = git(checkout.parent / "origin.git", "ls-tree", "-r", "--name-only", "HEAD")
    for d in days:
        for name in (f"{d}.md", f"{d}-decisions.png", f"{d}-cost.png"):
            assert f"reports/daily/{name}" in pushed.split(), name
    assert git(checkout.parent / "origin.git", "log", "-1", "--format=%s").strip() == "Daily report: yesterday"

    # Neither the store nor the API configured: refuse, rather than report an empty scratch database.
    env.pop("WAOOAW_DATABASE_URL")
    refused = subprocess.run(
        ["bash", "scripts/daily_report.sh"], cwd=checkout, env=env, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 2 and "WAOOAW_DATABASE_URL" in refused.stderr
