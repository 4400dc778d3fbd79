"""LLM budgets: the operator's limits, what a repository's config may do to them, and the budget a call gets.

The operator sets the limits (WAOOAW_LLM_*_BUDGET_USD, read in bot/settings.py), in USD:

- per repository, per UTC day;
- per installation, per UTC day and per UTC calendar month, over all its repositories;
- per agent, per UTC day and per month: what one agent may spend in one installation, over
  all its repositories (each agent gets the same limit);
- per CoE job (its depth's budget, which a maintainer may raise with `/answer budget`);
- per run: what one run of an agent may spend (a spec's `limits.usd_per_run`), whatever is left
  of the others.

A repository's `.github/waooaw.yml` may only lower a limit (`BudgetPolicy.lowered`): a value
above the operator's is the operator's. Spend is read from the decision ledger
(agents/ledger.py: `spend_outside_jobs`, `job_spend`), so every limit holds across
processes, repositories and restarts. The agents' limits count their rows outside jobs: a
job has a budget of its own, which its rows count against.

The call's budget is the tightest limit left (`budget_for`); when it cannot cover a call's
worst case the LLM client raises BudgetExceeded naming that limit, and the ladder reports
the decision as skipped for "budget" (never as passed).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from agents.ledger import LedgerOwner, job_spend, spend_outside_jobs
from agents.llm import Budget


@dataclass(frozen=True)
class BudgetPolicy:
    """USD limits on LLM spend; None means no limit of that kind."""

    repo_daily_usd: float | None = None  # per repository, per UTC day
    installation_daily_usd: float | None = None  # per installation, over its repositories
    installation_monthly_usd: float | None = None
    agent_daily_usd: float | None = None  # per agent in an installation, over its repositories
    agent_monthly_usd: float | None = None
    job_usd: float | None = None  # per job (LedgerOwner.job_id)
    run_usd: float | None = None  # per run of an agent: the budget a ladder made for one run starts with

    def lowered(self, **limits: float | None) -> BudgetPolicy:
        """These limits where they are lower than this policy's (a repository config's): never higher.
        A limit given as None leaves this policy's as it is."""
        known = {field.name for field in fields(self)}
        if unknown := set(limits) - known:
            raise TypeError(f"no such budget: {', '.join(sorted(unknown))}")
        return replace(self, **{name: _lower(getattr(self, name), value) for name, value in limits.items()})


def _lower(limit: float | None, wanted: float | None) -> float | None:
    if wanted is None:
        return limit
    return wanted if limit is None else min(limit, wanted)


def day_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def month_start(now: datetime) -> datetime:
    return day_start(now).replace(day=1)


def budget_for(session: Session, policy: BudgetPolicy, owner: LedgerOwner, agent: str, now: datetime) -> Budget:
    """What a call of `agent` for `owner` may still spend: the tightest of the limits that apply, named."""
    candidates = [Budget()]
    periodic = (
        policy.repo_daily_usd,
        policy.installation_daily_usd,
        policy.installation_monthly_usd,
        policy.agent_daily_usd,
        policy.agent_monthly_usd,
    )
    if any(limit is not None for limit in periodic):
        spent = spend_outside_jobs(session, owner, agent, day=day_start(now), month=month_start(now))
        installation = "no installation" if owner.installation_id is None else f"installation {owner.installation_id}"
        for limit, used, what in [
            (policy.repo_daily_usd if owner.repo else None, spent.repo_day, f"the daily LLM budget of {owner.repo}"),
            (policy.installation_daily_usd, spent.installation_day, f"the daily LLM budget of {installation}"),
            (policy.installation_monthly_usd, spent.installation_month, f"the monthly LLM budget of {installation}"),
            (policy.agent_daily_usd, spent.agent_day, f"the daily LLM budget of {agent} in {installation}"),
            (policy.agent_monthly_usd, spent.agent_month, f"the monthly LLM budget of {agent} in {installation}"),
        ]:
            if limit is not None:
                candidates.append(Budget(limit - used, f"{what} (${limit:.2f})"))
    if policy.job_usd is not None and owner.job_id:
        limit = policy.job_usd
        what = f"the LLM budget of job {owner.job_id} (${limit:.2f})"
        candidates.append(Budget(limit - job_spend(session, owner), what))
    if policy.run_usd is not None:
        candidates.append(Budget(policy.run_usd, f"the budget of one run of {agent} (${policy.run_usd:.2f})"))
    return min(candidates, key=lambda budget: budget.remaining_usd)
