"""LLM budgets per repository, installation and agent (agents/budgets.py), on the real PostgreSQL,
with the fake Anthropic API; and WowVision falling back to its rules, saying so, when a budget
is spent or the breaker is open."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pytest
from pydantic import BaseModel
from sqlalchemy import select

from agents.breaker import CircuitBreaker
from agents.budgets import BudgetPolicy
from agents.decisions import DecisionLadder, LLMRequest
from agents.ledger import Entry, LedgerOwner, record_entries
from agents.llm import LLMClient
from agents.store.db import Store
from agents.store.tables import Decision as LedgerRow
from bot.wiring import Platform
from tests.conftest import load_payload
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.github import FakeGitHub
from tests.helpers import delivering, github_platform

MODEL = "claude-sonnet-4-6"
HUNK = "@@ -1,2 +1,3 @@\n def view(request):\n+    rows = db.execute('SELECT * FROM users')\n"


class Finding(BaseModel):
    verdict: Literal["pass", "fail"]


FAIL = {"verdict": "fail"}
REQUEST = LLMRequest(
    system="Rule: views never run SQL.", schema=Finding, instructions="Does this hunk break it?", max_tokens=300
)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
A, B = "acme/api", "acme/web"  # two repositories of installation 7


def spent(
    store: Store, repo: str, installation: int, usd: float, *, agent: str = "wowvision", at: datetime = NOW
) -> None:
    record_entries(
        store,
        LedgerOwner(repo=repo, installation_id=installation),
        [Entry(agent, "earlier", "llm", "settled", cost_usd=usd, model_calls=1, at=at)],
    )


def decide(
    store: Store,
    fake: FakeAnthropic,
    policy: BudgetPolicy,
    repo: str,
    installation: int,
    agent: str = "wowvision",
    now: datetime = NOW,
) -> Any:
    fake.answer(FAIL)
    llm = LLMClient("test-key", MODEL, base_url=fake.url, max_retries=0)
    ladder = DecisionLadder(
        store, None, llm, LedgerOwner(repo=repo, installation_id=installation), budgets=policy, clock=Clock(now)
    )

    async def once() -> Any:
        try:
            return await ladder.decide(agent, f"rule-{repo}-{installation}-{agent}", 1, HUNK, llm_request=REQUEST)
        finally:
            await llm.aclose()

    decision = asyncio.run(once())
    fake.reset()
    return decision


def test_an_installations_daily_limit_holds_across_its_repositories(pg_store: Store, fake_anthropic: FakeAnthropic):
    policy = BudgetPolicy(installation_daily_usd=0.50)
    spent(pg_store, A, 7, 0.30)
    spent(pg_store, B, 7, 0.20)
    spent(pg_store, B, 7, 9.00, at=NOW - timedelta(days=1))  # yesterday's is not today's
    spent(pg_store, A, 8, 9.00)  # another installation's is its own
    record_entries(
        pg_store,
        LedgerOwner(repo=A, job_id="job-00000000a1", installation_id=7),  # a CoE job's spend is the installation's
        [Entry("research", "research.research", "llm", "settled", key="research.research", cost_usd=0.05, at=NOW)],
    )

    stopped = decide(pg_store, fake_anthropic, policy, "acme/docs", 7)  # a third repository: nothing spent there
    assert (stopped.rung, stopped.reason) == ("skipped", "budget")
    assert "the daily LLM budget of installation 7 ($0.50)" in (stopped.detail or "")
    assert decide(pg_store, fake_anthropic, BudgetPolicy(installation_daily_usd=0.53), A, 7).reason == "budget"
    assert decide(pg_store, fake_anthropic, BudgetPolicy(installation_daily_usd=0.60), A, 7).rung == "llm"
    assert decide(pg_store, fake_anthropic, BudgetPolicy(installation_daily_usd=0.50), "acme/docs", 9).rung == "llm"


def test_an_installations_monthly_limit_counts_the_month_not_the_day(pg_store: Store, fake_anthropic: FakeAnthropic):
    spent(pg_store, A, 7, 0.40, at=NOW.replace(day=2))
    spent(pg_store, B, 7, 0.10)
    spent(pg_store, B, 7, 9.00, at=NOW.replace(day=2) - timedelta(days=5))  # October's
    policy = BudgetPolicy(installation_daily_usd=1.0, installation_monthly_usd=0.50)
    stopped = decide(pg_store, fake_anthropic, policy, B, 7)
    assert stopped.reason == "budget" and "the monthly LLM budget of installation 7 ($0.50)" in (stopped.detail or "")
    # On the first of next month the month is whole again.
    december = datetime(2026, 12, 1, 0, 5, tzinfo=UTC)
    assert decide(pg_store, fake_anthropic, policy, B, 7, now=december).rung == "llm"


def test_an_agents_limits_hold_across_repositories_and_leave_other_agents_alone(
    pg_store: Store, fake_anthropic: FakeAnthropic
):
    spent(pg_store, A, 7, 0.30, agent="wowvision")
    spent(pg_store, B, 7, 0.25, agent="wowvision", at=NOW.replace(day=1))
    spent(pg_store, B, 7, 0.25, agent="concierge")
    record_entries(  # a CoE job's rows are WowDomain's, not the agent's of the same name
        pg_store,
        LedgerOwner(repo=A, job_id="job-00000000a1", installation_id=7),
        [Entry("concierge", "x.concierge", "llm", "settled", key="x.concierge", cost_usd=5.0, at=NOW)],
    )
    daily = BudgetPolicy(agent_daily_usd=0.30)
    stopped = decide(pg_store, fake_anthropic, daily, B, 7, agent="wowvision")
    assert stopped.reason == "budget"
    assert "the daily LLM budget of wowvision in installation 7" in (stopped.detail or "")
    assert decide(pg_store, fake_anthropic, daily, B, 7, agent="concierge").rung == "llm"
    assert decide(pg_store, fake_anthropic, daily, B, 8, agent="wowvision").rung == "llm"

    monthly = BudgetPolicy(agent_daily_usd=1.0, agent_monthly_usd=0.55)
    stopped = decide(pg_store, fake_anthropic, monthly, A, 7, agent="wowvision")
    assert "the monthly LLM budget of wowvision in installation 7" in (stopped.detail or "")


def test_a_repositorys_daily_limit_is_its_own_in_each_installation(pg_store: Store, fake_anthropic: FakeAnthropic):
    spent(pg_store, A, 7, 0.50)
    policy = BudgetPolicy(repo_daily_usd=0.50)
    assert decide(pg_store, fake_anthropic, policy, A, 7).reason == "budget"
    assert decide(pg_store, fake_anthropic, policy, A, 8).rung == "llm"  # the same name under another installation


def test_a_repository_config_lowers_a_limit_and_never_raises_it():
    operator = BudgetPolicy(repo_daily_usd=1.0, installation_daily_usd=5.0)
    assert operator.lowered(repo_daily_usd=100.0) == operator
    assert operator.lowered(repo_daily_usd=0.25).repo_daily_usd == 0.25
    assert operator.lowered(repo_daily_usd=None) == operator
    assert BudgetPolicy().lowered(repo_daily_usd=0.25).repo_daily_usd == 0.25  # no limit: any is lower
    with pytest.raises(TypeError):
        operator.lowered(repo_weekly_usd=1.0)


# ---------------------------------------------------------------- WowVision, end to end

REPO = "Codertocat/Hello-World"
HEAD = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
BASE = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"
SWALLOW = "def load(path):\n    try:\n        return open(path).read()\n    except Exception:\n        pass\n"
SWALLOW_TOO = "def size(path):\n    try:\n        return len(open(path).read())\n    except Exception:\n        pass\n"
DEBUG = "def debug():\n    breakpoint()\n"
# Sonnet 4.6 at $15 per million output tokens: a call's worst case (all of its 2048 tokens and
# the prompt) is about $0.04; one answering with 2000 tokens costs about $0.035.
ANSWER = Reply("tool", tool_input={"violates": True, "line": 4}, output_tokens=2000)


def new_files_diff(files: dict[str, str]) -> str:
    out = []
    for path, content in files.items():
        lines = content.splitlines()
        out.append(
            f"diff --git a/{path} b/{path}\nnew file mode 100644\nindex 0000000..1111111\n"
            f"--- /dev/null\n+++ b/{path}\n@@ -0,0 +1,{len(lines)} @@\n" + "".join(f"+{line}\n" for line in lines)
        )
    return "".join(out)


def review(
    store: Store,
    claude: FakeAnthropic,
    *,
    config: bytes | None = None,
    breaker: CircuitBreaker | None = None,
    **settings: Any,
) -> tuple[str, str]:
    """A pull request with two hunks for the LLM rule and one for a plain rule, reviewed by the app:
    the summary comment it posted, and its check run's summary."""
    files = {"app/io.py": SWALLOW, "app/size.py": SWALLOW_TOO, "app/debug.py": DEBUG}
    with FakeGitHub() as fake:
        fake.set_permission("Codertocat", "write")
        fake.pull_diffs[(REPO, 2)] = new_files_diff(files)
        for path, content in files.items():
            fake.files[(REPO, HEAD, path)] = content.encode()
        if config is not None:
            fake.files[(REPO, BASE, ".github/waooaw.yml")] = config

        def platform() -> Platform:
            built = github_platform(store, fake.url, **settings)
            built.llm = LLMClient("test-key", MODEL, base_url=claude.url, max_retries=0, breaker=breaker)
            return built

        with delivering(platform) as deliver:
            deliver("pull_request", load_payload("pull_request/opened.payload.json"), "budget-1")
        summary = next(c["body"] for c in fake.comments.values() if "summary:2" in c["body"])
        (check,) = fake.check_runs.values()
    return summary, check["output"]["summary"]


def test_a_budget_spent_mid_review_falls_back_to_the_rules_and_says_so(pg_store: Store, fake_anthropic: FakeAnthropic):
    claude = fake_anthropic
    claude.responder = lambda request: ANSWER
    summary, check = review(pg_store, claude, WAOOAW_LLM_REPO_DAILY_BUDGET_USD="0.06")

    assert len(claude.messages) == 1, "the first hunk is judged; the budget left cannot cover the second"
    assert "hygiene-breakpoint" in summary  # the rules still report what they find
    assert summary.count("architecture-swallowed-errors") == 2  # one finding, one skipped item
    headline = "1 item the model did not judge** (not checked, not passed): LLM rung skipped, its budget is spent."
    assert headline in summary and headline in check
    assert f"the daily LLM budget of {REPO} (&#36;0.06)" in summary  # agents.markdown escapes the dollar
    with pg_store.reading() as session:
        rows = session.execute(
            select(LedgerRow.rung, LedgerRow.status, LedgerRow.outcome)
            .where(LedgerRow.rung.in_(("llm", "skipped")))
            .order_by(LedgerRow.id)
        ).all()
    assert [(rung, status, outcome.get("reason")) for rung, status, outcome in rows] == [
        ("llm", "settled", None),
        ("skipped", "skipped", "budget"),
    ]


@pytest.mark.parametrize(
    "config, calls",
    [
        (b"budget_usd: 100\n", 1),  # above the operator's: the operator's holds
        (b"budget_usd: 0.001\n", 0),  # below: it holds
    ],
)
def test_the_repository_config_only_lowers_the_operators_limit(
    pg_store: Store, fake_anthropic: FakeAnthropic, config: bytes, calls: int
):
    fake_anthropic.responder = lambda request: ANSWER
    summary, _ = review(pg_store, fake_anthropic, config=config, WAOOAW_LLM_REPO_DAILY_BUDGET_USD="0.06")
    assert len(fake_anthropic.messages) == calls
    assert summary.count("LLM rung skipped, its budget is spent") == 3 - calls  # the headline, and each item


def test_an_open_breaker_falls_back_to_the_rules_and_says_so(pg_store: Store, fake_anthropic: FakeAnthropic):
    breaker = CircuitBreaker(threshold=1, cooldown=600)
    asyncio.run(breaker.failed())  # another call just failed: the breaker is open
    summary, _ = review(pg_store, fake_anthropic, breaker=breaker)
    assert fake_anthropic.messages == []
    assert "hygiene-breakpoint" in summary
    assert (
        "2 items the model did not judge** (not checked, not passed): LLM rung skipped, the Anthropic API is "
        "failing (circuit breaker open)." in summary
    )
    assert "calls are held" in summary
