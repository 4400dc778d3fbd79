"""`waooaw costs` against the real ledger (PostgreSQL): its lines sum the rows, by each grouping."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from agents.ledger import Entry, LedgerOwner, record_entries

OLD = datetime(2026, 1, 5, 12, tzinfo=UTC)
NEW = datetime(2026, 3, 2, 9, tzinfo=UTC)
A, B = "Codertocat/Hello-World", "octo-org/octo-repo"

# (owner, entry): rules settle for nothing, the model's answers cost; two models, two repositories, an old row.
ROWS = [
    (LedgerOwner(repo=A, installation_id=1), Entry("wowvision", "size", "deterministic", "settled", at=NEW)),
    (
        LedgerOwner(repo=A, installation_id=1),
        Entry(
            "wowvision",
            "design",
            "llm",
            "settled",
            outcome={"model": "claude-sonnet-5-5"},
            tokens_in=1200,
            tokens_out=300,
            cost_usd=0.0081,
            model_calls=1,
            at=NEW,
        ),
    ),
    (
        LedgerOwner(repo=B, installation_id=2),
        Entry(
            "tech-support",
            "reply",
            "llm",
            "settled",
            outcome={"model": "claude-haiku-4-5"},
            tokens_in=900,
            tokens_out=150,
            cost_usd=0.0016,
            model_calls=2,
            at=NEW,
        ),
    ),
    (
        LedgerOwner(repo=B, installation_id=2, job_id="job-1"),
        Entry(
            "domain-analyst",
            "step",
            "llm",
            "settled",
            key="s1",
            outcome={"model": "claude-sonnet-5-5"},
            tokens_in=5000,
            tokens_out=2000,
            cost_usd=0.045,
            model_calls=1,
            at=NEW,
        ),
    ),
    (
        LedgerOwner(repo=A, installation_id=1),
        Entry(
            "wowvision",
            "design",
            "llm",
            "settled",
            outcome={"model": "claude-sonnet-5-5"},
            tokens_in=1000,
            tokens_out=100,
            cost_usd=0.5,
            model_calls=1,
            at=OLD,
        ),
    ),
]


def costs(pg_store, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "WAOOAW_", "ANTHROPIC_"))}
    env["WAOOAW_DATABASE_URL"] = pg_store.url
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "costs", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )


def lines(output: str) -> dict[str, list[str]]:
    """The table's lines by their first cell (the header and rules left out)."""
    body = [line.split() for line in output.splitlines()[2:] if line and not line.startswith("-")]
    return {cells[0]: cells[1:] for cells in body}


def expected(by: str, since: datetime | None) -> dict[str, list[str]]:
    sums: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0, 0, 0.0])
    for owner, entry in ROWS:
        if since is not None and entry.at < since:
            continue
        key = {
            "agent": entry.agent,
            "repo": owner.repo,
            "installation": str(owner.installation_id),
            "model": entry.outcome.get("model", "(none)"),
        }[by]
        for total in (sums[key], sums["total"]):
            for i, value in enumerate((1, entry.model_calls, entry.tokens_in, entry.tokens_out, entry.cost_usd)):
                total[i] += value
    return {key: [str(int(v)) for v in s[:4]] + [f"{s[4]:.4f}"] for key, s in sums.items()}


@pytest.fixture
def ledger(pg_store):
    for owner, entry in ROWS:
        record_entries(pg_store, owner, [entry])
    return pg_store


@pytest.mark.parametrize("by", ["agent", "repo", "model", "installation"])
def test_each_line_sums_the_ledger_rows_it_groups(ledger, tmp_path, by):
    result = costs(ledger, tmp_path, "--by", by)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split()[0] == by
    assert lines(result.stdout) == expected(by, None)


def test_since_leaves_out_older_rows_and_dearest_comes_first(ledger, tmp_path):
    result = costs(ledger, tmp_path, "--since", "2026-02-01")
    assert result.returncode == 0, result.stderr
    assert lines(result.stdout) == expected("agent", datetime(2026, 2, 1, tzinfo=UTC))
    assert list(lines(result.stdout)) == ["domain-analyst", "wowvision", "tech-support", "total"]


def test_a_bad_since_is_a_usage_error(ledger, tmp_path):
    result = costs(ledger, tmp_path, "--since", "last tuesday")
    assert result.returncode == 2 and "--since" in result.stderr


def test_a_job_row_written_again_is_counted_once_in_metrics(pg_store):
    def counted() -> float:
        return REGISTRY.get_sample_value("waooaw_model_cost_usd_total", {"agent": "domain-analyst"}) or 0.0

    owner, entry = ROWS[3]
    before = counted()
    assert record_entries(pg_store, owner, [entry]) == 1
    assert record_entries(pg_store, owner, [entry]) == 0
    assert counted() - before == pytest.approx(entry.cost_usd)
    decisions = REGISTRY.get_sample_value(
        "waooaw_decisions_total", {"agent": "domain-analyst", "rung": "llm", "status": "settled", "reason": ""}
    )
    assert decisions is not None and decisions >= 1
