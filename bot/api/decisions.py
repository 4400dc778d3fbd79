"""/api/v1/decisions: a CoE job's model calls into the decision ledger, what the job has spent, and
what it may still spend.

A runner on GitHub Actions records its steps here with its job token (agents/ledger.py
checks the grant: the token's installation, repository and job). Each entry carries a key
unique in the job — a committed step's is the step — so a request sent again, or a resumed
job writing its steps again, records each once. `GET /decisions/budget` gives the runner the
budget agents/budgets.py computes with the operator's limits, which only the app knows: the
tightest of the job's own and its installation's and agent's, for the token's installation
alone.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from agents.budgets import BudgetPolicy, job_budget
from agents.ledger import COUNT_MAX, ENTRIES_MAX, KEY_MAX, Entry, record_for_job, spend_for_job
from agents.store.db import Store
from agents.tokens import JOB_ID_MAX, Grant
from bot.api.json_body import JSON
from bot.api.route import granted
from bot.api.schemas import ERRORS, WRITE_ERRORS, Text

if TYPE_CHECKING:
    from bot.api.router import Api

JobId = Annotated[Text, Field(min_length=1, max_length=JOB_ID_MAX, description="The job id, e.g. `job-3f9a2b1c0d`.")]
LedgerCount = Annotated[int, Field(ge=0, le=COUNT_MAX)]
Amount = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class LedgerEntry(BaseModel):
    """One decision of the job: a committed step (settled), or an answer it could not use."""

    model_config = ConfigDict(extra="forbid")

    agent: Annotated[Text, Field(min_length=1, max_length=64)]
    rule: Annotated[Text, Field(min_length=1, max_length=128, description="What was decided: a step's key.")]
    rung: Literal["deterministic", "cached", "llm", "skipped"]
    status: Literal["settled", "skipped", "error"]
    key: Annotated[Text, Field(min_length=1, max_length=KEY_MAX)] = Field(
        description="Unique in the job: an entry whose key the job already has is not written again."
    )
    input_hash: Annotated[Text, Field(max_length=64)] | None = None
    outcome: dict[str, Any] = Field(default_factory=dict, description="What came of it (no U+0000 in its strings).")
    latency_ms: Amount = 0.0
    tokens_in: LedgerCount = 0
    tokens_out: LedgerCount = 0
    cost_usd: Amount = 0.0
    model_calls: LedgerCount = Field(0, description="Requests the model answered (and billed) for it.")


class DecisionsWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    owner: Text
    repo: Text
    job: JobId
    entries: list[LedgerEntry] = Field(min_length=1, max_length=ENTRIES_MAX)


class DecisionsRecorded(BaseModel):
    recorded: int = Field(description="Entries written now; the others were recorded before.")


class JobSpend(BaseModel):
    owner: str
    repo: str
    job: str
    cost_usd: float = Field(description="Every entry of the job so far: its steps and the answers it could not use.")


class JobBudgetLeft(BaseModel):
    owner: str
    repo: str
    job: str
    agent: str
    spent_usd: float = Field(description="Every entry of the job so far.")
    remaining_usd: float = Field(description="What the tightest limit leaves (below 0 when it is overspent).")
    limit: str = Field(description="That limit, named: `the monthly LLM budget of installation 7 ($5.00)`.")
    scope: Literal["job", "installation_daily", "installation_monthly", "agent_daily", "agent_monthly"] = Field(
        description="Which limit: the job's own budget (a maintainer may raise it) or one of the operator's."
    )


def router(api: Api, store: Store, budgets: BudgetPolicy) -> APIRouter:
    routes = APIRouter(route_class=api.route_class, tags=["decisions"])

    @routes.post(
        "/decisions",
        status_code=201,
        response_model=DecisionsRecorded,
        summary="Record a job's decisions (its model calls) in the ledger, each key once",
        responses=WRITE_ERRORS,
    )
    async def record_decisions(body: DecisionsWrite, grant: Grant = Depends(granted)) -> Response:
        entries = [Entry(**entry.model_dump()) for entry in body.entries]
        recorded = await api.call(record_for_job, store, grant, f"{body.owner}/{body.repo}", body.job, entries)
        return Response(orjson.dumps({"recorded": recorded}), status_code=201, media_type=JSON)

    @routes.get(
        "/decisions/spend", response_model=JobSpend, summary="What a job has spent, from the ledger", responses=ERRORS
    )
    async def job_spend(
        owner: Text = Query(),
        repo: Text = Query(),
        job: Text = Query(min_length=1, max_length=JOB_ID_MAX),
        grant: Grant = Depends(granted),
    ) -> Response:
        spent = await api.call(spend_for_job, store, grant, f"{owner}/{repo}", job)
        return Response(orjson.dumps({"owner": owner, "repo": repo, "job": job, "cost_usd": spent}), media_type=JSON)

    @routes.get(
        "/decisions/budget",
        response_model=JobBudgetLeft,
        summary="What a job may still spend: its own budget, its installation's and its agent's limits",
        responses=ERRORS,
    )
    async def budget_left(
        owner: Text = Query(),
        repo: Text = Query(),
        job: Text = Query(min_length=1, max_length=JOB_ID_MAX),
        agent: Text = Query(min_length=1, max_length=64, description="The job's agent: `wowdomain`."),
        budget_usd: float = Query(ge=0, allow_inf_nan=False, description="The job's own budget, from its record."),
        grant: Grant = Depends(granted),
    ) -> Response:
        left = await api.call(
            job_budget, store, grant, budgets, f"{owner}/{repo}", job, agent=agent, budget_usd=budget_usd
        )
        body = {"owner": owner, "repo": repo, "job": job, "agent": agent, **asdict(left)}
        return Response(orjson.dumps(body), media_type=JSON)

    return routes
