"""The decision ledger: one row per decision an agent or a CoE step made, with what it cost.

`record` is the one way a row is written: by the decision ladder (agents/decisions.py), by
WowVision for the findings its rules settle, and by the CoE runner for each committed step
and each answer it could not use — through its ContextClient, so straight on the store
inside the app and over `POST /api/v1/decisions` from a GitHub Actions runner
(`record_for_job`, which checks the token's grant). Budgets and the daily report read
spend from here and nowhere else:

- a job's spend is every row of the job (`job_spend`): its steps and its wasted answers;
- the periodic spend (`periodic_spend`, by day and by month, each scoped by the installation):
  an installation's is every row of it, its jobs' too; an agent's, its rows outside jobs and,
  asked for a job, every job's rows as well (the CoE jobs are one agent's: WowDomain's); a
  repository's, its rows outside jobs (a job has a budget of its own: agents/budgets.py).

A job's rows carry a key unique in the job (a step's is the step's key): a row written
again is recorded once. So the runner may write a committed step's row as often as it
likes — it writes them all again when a job resumes, in case a run was killed before it
recorded its last steps — and a job never counts a step twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from agents import telemetry
from agents.context.documents import check_segment, split_repo
from agents.context.errors import Forbidden, InvalidRequest, NotFound
from agents.store.db import Store
from agents.store.tables import Decision, declared_length, utcnow
from agents.tokens import JOB_ID_MAX, Grant

Rung = Literal["deterministic", "cached", "llm", "skipped"]
EntryStatus = Literal["settled", "skipped", "error"]
KEY_MAX = declared_length(Decision.__table__.c.idempotency_key)
ENTRIES_MAX = 200  # rows in one write through the API
COUNT_MAX = 2**31 - 1  # tokens and model calls are INTEGER columns
JOB_KEY = ["job_id", "repo", "installation_id", "idempotency_key"]  # unique: uq_decisions_job_key


@dataclass(frozen=True)
class LedgerOwner:
    """Whom ledger rows (and the cached verdicts of a ladder) belong to."""

    repo: str | None = None
    delivery_id: str | None = None
    job_id: str | None = None
    installation_id: int | None = None  # None: a run outside any installation (local, tests)
    public: bool = False  # the repository is public (the event says so): its inputs are public


@dataclass(frozen=True)
class Entry:
    """One decision as the ledger holds it; whose it is comes with it as a LedgerOwner."""

    agent: str
    rule: str
    rung: Rung
    status: EntryStatus
    key: str | None = None  # unique in the job; required for a job's rows written through the API
    input_hash: str | None = None
    outcome: dict[str, Any] = field(default_factory=dict)
    latency_ms: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    model_calls: int = 0
    at: datetime | None = None  # when it was decided; None: when it is recorded

    def document(self) -> dict[str, Any]:
        """The entry as the Context API takes it (the time is the server's)."""
        return {name: value for name, value in asdict(self).items() if name != "at"}


def record_entries(store: Store, where: LedgerOwner, entries: Sequence[Entry]) -> int:
    """Write `entries` for `where` in one statement; returns how many were new (a job's keys are recorded once)."""
    if not entries:
        return 0
    now = utcnow()
    rows = [
        {
            "agent": e.agent,
            "rule": e.rule,
            "rung": e.rung,
            "status": e.status,
            "input_hash": e.input_hash,
            "outcome": e.outcome,
            "latency_ms": e.latency_ms,
            "tokens_in": e.tokens_in,
            "tokens_out": e.tokens_out,
            "cost_usd": e.cost_usd,
            "model_calls": e.model_calls,
            "idempotency_key": e.key,
            "repo": where.repo,
            "delivery_id": where.delivery_id,
            "job_id": where.job_id,
            "installation_id": where.installation_id,
            "created_at": e.at or now,
        }
        for e in entries
    ]
    statement = store.insert(Decision).values(rows).on_conflict_do_nothing(index_elements=JOB_KEY)
    with store.session() as session:
        new_keys = [key for (key,) in session.execute(statement.returning(Decision.idempotency_key))]
    # A row without a key is always new; of a job's, only those not recorded before count.
    telemetry.recorded(
        [e for e in entries if e.key is None or e.key in new_keys] if len(new_keys) < len(entries) else entries
    )
    return len(new_keys)


def job_spend(session: Session, where: LedgerOwner) -> float:
    """What a job has spent so far: every row of it, in its installation and repository."""
    spent = session.scalar(
        select(func.coalesce(func.sum(Decision.cost_usd), 0.0)).where(
            Decision.job_id == where.job_id, Decision.repo == where.repo, _installation_is(where.installation_id)
        )
    )
    return float(spent or 0.0)


@dataclass(frozen=True)
class Spend:
    """What was spent in an installation, by the scopes the periodic limits hold (USD)."""

    repo_day: float = 0.0  # the repository's rows outside jobs since the start of the day
    installation_day: float = 0.0  # every row of the installation, its jobs' too
    installation_month: float = 0.0
    agent_day: float = 0.0  # the agent's rows over every repository of the installation (see periodic_spend)
    agent_month: float = 0.0
    agent_repo_day: float = 0.0  # the agent's rows outside jobs on the repository, since the start of the day


def periodic_spend(session: Session, where: LedgerOwner, agent: str, *, day: datetime, month: datetime) -> Spend:
    """What `where`'s installation, its repository and `agent` there have spent since `day` and since
    `month` (`month` ≤ `day`): one scan of the installation's rows of the month. The agent's are its rows
    outside jobs and, for a job (`where.job_id`), every job's rows too: the jobs are that agent's."""
    since_day = Decision.created_at >= day
    outside_jobs = Decision.job_id.is_(None)
    mine = and_(Decision.agent == agent, outside_jobs)
    if where.job_id is not None:
        mine = or_(mine, Decision.job_id.is_not(None))

    def total(*conditions: Any) -> Any:
        cost = case((and_(*conditions), Decision.cost_usd), else_=0.0) if conditions else Decision.cost_usd
        return func.coalesce(func.sum(cost), 0.0)

    row = session.execute(
        select(
            total(since_day, Decision.repo == where.repo, outside_jobs),
            total(since_day),
            total(),
            total(since_day, mine),
            total(mine),
            total(since_day, Decision.agent == agent, Decision.repo == where.repo, outside_jobs),
        ).where(_installation_is(where.installation_id), Decision.created_at >= month)
    ).one()
    return Spend(*(float(value or 0.0) for value in row))


def _installation_is(installation_id: int | None) -> Any:
    column = Decision.installation_id
    return column.is_(None) if installation_id is None else column == installation_id


SpendGroup = Literal["agent", "repo", "model", "installation"]


@dataclass(frozen=True)
class SpendLine:
    """One line of `waooaw costs`: what the decisions of one agent, repository, model or installation cost."""

    key: str | None  # None: rows without one (no model for a rule's decision; a run outside any installation)
    decisions: int
    model_calls: int
    tokens_in: int
    tokens_out: int
    cost_usd: float


def spend_by(session: Session, by: SpendGroup, since: datetime | None = None) -> list[SpendLine]:
    """The ledger summed by `by` from `since` (all of it without one), dearest first."""
    column = {
        "agent": Decision.agent,
        "repo": Decision.repo,
        "installation": Decision.installation_id,
        "model": Decision.outcome["model"].as_string(),  # the ladder keeps the model a decision asked
    }[by]
    query = select(
        column,
        func.count(),
        func.sum(Decision.model_calls),
        func.sum(Decision.tokens_in),
        func.sum(Decision.tokens_out),
        func.sum(Decision.cost_usd),
    ).group_by(column)
    if since is not None:
        query = query.where(Decision.created_at >= since)
    rows = [
        SpendLine(
            None if key is None else str(key), count, int(calls or 0), int(tin or 0), int(tout or 0), float(usd or 0)
        )
        for key, count, calls, tin, tout, usd in session.execute(query)
    ]
    return sorted(rows, key=lambda row: (-row.cost_usd, row.key or ""))


# ------------------------------------------------------------------ for a token (the API, the in-process client)


def job_owner(grant: Grant, repo: str, job: str, *, write: bool) -> LedgerOwner:
    """Whose a job's rows are, for a token that may reach them: its installation's, of its repository
    and job (another repository is 404 to a token bound to one; another job's, or a write with a
    read-only token, 403)."""
    repo = "/".join(split_repo(repo))
    check_segment("job", job, JOB_ID_MAX)
    if not grant.may_reach(repo):
        raise NotFound(f"no job {job} in {repo}")
    if write and grant.read_only:
        raise Forbidden("this token is read-only")
    if not grant.may_touch(repo, job):
        raise Forbidden(grant.reach())
    return LedgerOwner(repo=repo, job_id=job, installation_id=grant.installation_id)


def record_for_job(store: Store, grant: Grant, repo: str, job: str, entries: Sequence[Entry]) -> int:
    """Record a job's rows for a token: each must carry its key (so a request sent again counts once)."""
    where = job_owner(grant, repo, job, write=True)
    if not 0 < len(entries) <= ENTRIES_MAX:
        raise InvalidRequest(f"send 1 to {ENTRIES_MAX} entries at a time")
    for entry in entries:
        _check(entry)
    return record_entries(store, where, entries)


def spend_for_job(store: Store, grant: Grant, repo: str, job: str) -> float:
    where = job_owner(grant, repo, job, write=False)
    with store.reading() as session:
        return job_spend(session, where)


def _check(entry: Entry) -> None:
    if not entry.key or len(entry.key) > KEY_MAX:
        raise InvalidRequest(f"each entry of a job needs its key, 1 to {KEY_MAX} characters")
