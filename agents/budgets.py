"""LLM budgets: the operator's limits, what a repository's config may do to them, and the budget a call gets.

The operator sets the limits (WAOOAW_LLM_*_BUDGET_USD, read in bot/settings.py), in USD:

- per repository, per UTC day;
- per installation, per UTC day and per UTC calendar month, over all its repositories;
- per agent, per UTC day and per month: what one agent may spend in one installation, over
  all its repositories (each agent gets the same limit);
- per agent on one repository, per UTC day: its hired identity's budget there (`agents.budgets`
  in the repository's config, which the Hiring agent records; there is no operator limit of this kind);
- per CoE job (its depth's budget, which a maintainer may raise with `/answer budget`);
- per run: what one run of an agent may spend (a spec's `limits.usd_per_run`), whatever is left
  of the others.

A repository's `.github/waooaw.yml` may only lower a limit (`BudgetPolicy.lowered`): a value
above the operator's is the operator's. Spend is read from the decision ledger
(agents/ledger.py: `periodic_spend`, `job_spend`), so every limit holds across processes,
repositories and restarts.

Who is held to what: an agent's decision on an event, to its repository's, installation's and
agent's limits; a CoE job, to its own budget and to its installation's and agent's limits (a
job's agent is WowDomain; the repository's daily limit is the events' — the job's budget
stands in for it). An installation's limits count every row of the installation, its jobs'
too; an agent's count its rows, and WowDomain's every job's; a repository's, its rows outside
jobs. A job asks for its budget through its ContextClient (`job_budget`): on the store
inside the app or on the CLI, over `GET /api/v1/decisions/budget` from an Actions runner —
either way computed here, with the operator's policy where the store is.

The call's budget is the tightest limit left (`budget_for`); when it cannot cover a call's
worst case the LLM client raises BudgetExceeded naming that limit, and the ladder reports
the decision as skipped for "budget" (never as passed); a job parks on it, its question
naming the limit.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from agents.context.client_values import JobBudget
from agents.ledger import LedgerOwner, job_owner, job_spend, periodic_spend
from agents.llm import Budget
from agents.store.db import Store
from agents.store.tables import utcnow
from agents.tokens import Grant


@dataclass(frozen=True)
class BudgetPolicy:
    """USD limits on LLM spend; None means no limit of that kind."""

    repo_daily_usd: float | None = None  # per repository, per UTC day
    installation_daily_usd: float | None = None  # per installation, over its repositories
    installation_monthly_usd: float | None = None
    agent_daily_usd: float | None = None  # per agent in an installation, over its repositories
    agent_monthly_usd: float | None = None
    hire_daily_usd: float | None = None  # per agent on one repository, per UTC day (its hired identity's)
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
    return min((budget for _, budget in _limits(session, policy, owner, agent, now)), key=_left)


def _left(budget: Budget) -> float:
    return budget.remaining_usd


def _limits(
    session: Session, policy: BudgetPolicy, owner: LedgerOwner, agent: str, now: datetime
) -> list[tuple[str, Budget]]:
    """Each limit that holds `owner`, by scope (the names of the waooaw_llm_budget_usd metric, `job` and `run`)."""
    candidates = [("none", Budget())]
    job = owner.job_id is not None
    periodic = [
        ("repo_daily", None if job or not owner.repo else policy.repo_daily_usd),
        ("hire_daily", None if job or not owner.repo else policy.hire_daily_usd),
        ("installation_daily", policy.installation_daily_usd),
        ("installation_monthly", policy.installation_monthly_usd),
        ("agent_daily", policy.agent_daily_usd),
        ("agent_monthly", policy.agent_monthly_usd),
    ]
    if any(limit is not None for _, limit in periodic):
        spent = periodic_spend(session, owner, agent, day=day_start(now), month=month_start(now))
        installation = "no installation" if owner.installation_id is None else f"installation {owner.installation_id}"
        used = {
            "repo_daily": (spent.repo_day, f"the daily LLM budget of {owner.repo}"),
            "hire_daily": (spent.agent_repo_day, f"the daily LLM budget of {agent} on {owner.repo}"),
            "installation_daily": (spent.installation_day, f"the daily LLM budget of {installation}"),
            "installation_monthly": (spent.installation_month, f"the monthly LLM budget of {installation}"),
            "agent_daily": (spent.agent_day, f"the daily LLM budget of {agent} in {installation}"),
            "agent_monthly": (spent.agent_month, f"the monthly LLM budget of {agent} in {installation}"),
        }
        for scope, limit in periodic:
            if limit is not None:
                total, what = used[scope]
                candidates.append((scope, Budget(limit - total, f"{what} (${limit:.2f})")))
    if policy.job_usd is not None and job:
        limit = policy.job_usd
        what = f"the LLM budget of job {owner.job_id} (${limit:.2f})"
        candidates.append(("job", Budget(limit - job_spend(session, owner), what)))
    if policy.run_usd is not None:
        candidates.append(("run", Budget(policy.run_usd, f"the budget of one run of {agent} (${policy.run_usd:.2f})")))
    return candidates


def job_budget(
    store: Store,
    grant: Grant,
    policy: BudgetPolicy,
    repo: str,
    job: str,
    *,
    agent: str,
    budget_usd: float,
    now: datetime | None = None,
) -> JobBudget:
    """What a job that `grant` reaches has spent and may still spend: its own budget (`budget_usd`, which
    the job's record holds) and the operator's limits of its installation and of `agent`, its agent. A token
    learns its own installation's spend only: another repository than its own is 404, another job 403."""
    where = job_owner(grant, repo, job, write=False)
    with store.reading() as session:
        limits = _limits(session, replace(policy, job_usd=budget_usd), where, agent, now or utcnow())
        spent = job_spend(session, where)
    scope, binding = min(limits, key=lambda limit: _left(limit[1]))
    return JobBudget(spent, binding.remaining_usd, binding.limit, scope)
