"""The daily report's data: what the store says about one day, as plain values.

The same model is built from the store (`agents.reports.queries`), served as JSON by
the app's report API and read back by `waooaw report daily` in API mode, so the
Markdown and the charts are rendered from one shape whichever way the data came.

A figure the store does not record is None, never 0: the renderer says "no data yet" for it.
"""

from __future__ import annotations

import datetime
from datetime import date

from pydantic import BaseModel, Field

from agents.domain.job import Totals

RUNGS = ("deterministic", "cached", "llm")  # the ladder, in order; anything else is listed after
FAILED_RUN = ("error", "timeout")
TREND_DAYS = 7
SERIES_DAYS = 14
JOB_ROWS = 50  # CoE jobs listed in a report
CONVERSATION_ROWS = 30  # agents' conversations listed in a report


def without_llm_share(decisions: dict[str, int]) -> float | None:
    """Of the decisions settled (on a rung of the ladder, not skipped), the share no LLM answered."""
    settled = sum(decisions.get(rung, 0) for rung in RUNGS)
    return None if settled == 0 else 1 - decisions.get("llm", 0) / settled


class DaySeries(BaseModel):
    """One day of the 14-day series the trend and the charts are drawn from."""

    date: date
    events: int = 0
    runs: int = 0
    run_failures: int = 0
    outputs: int = 0
    decisions: dict[str, int] = Field(default_factory=dict)  # by rung
    cost_usd: float = 0.0  # the ledger's LLM spend of agents, outside jobs
    coe_cost_usd: float = 0.0  # the ledger's CoE job steps committed that day

    @property
    def decisions_total(self) -> int:
        return sum(self.decisions.values())

    @property
    def total_cost_usd(self) -> float:
        return self.cost_usd + self.coe_cost_usd


class AgentDay(BaseModel):
    agent: str
    wakes: int = 0  # distinct deliveries it ran on
    runs: int = 0  # every attempt
    ok: int = 0
    failures: int = 0  # error or timeout
    abandoned: int = 0  # its worker died mid-run; a later attempt took over
    running: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    decisions: dict[str, int] = Field(default_factory=dict)  # by rung
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    outputs: dict[str, int] = Field(default_factory=dict)  # published that day, by kind

    @property
    def decisions_total(self) -> int:
        return sum(self.decisions.values())

    @property
    def without_llm_share(self) -> float | None:
        return without_llm_share(self.decisions)


class Count(BaseModel):
    name: str
    count: int


class RunError(BaseModel):
    agent: str
    status: str
    error: str
    count: int


class OutputCounts(BaseModel):
    kind: str
    published: int = 0  # created that day
    edited: int = 0  # created earlier, updated that day


class Link(BaseModel):
    agent: str
    kind: str
    repo: str
    url: str


class WowVisionDay(BaseModel):
    decisions: int = 0
    top_rules: list[Count] = Field(default_factory=list)
    outputs: dict[str, int] = Field(default_factory=dict)
    # None where the store holds no such record.
    findings_opened: int | None = None
    findings_fixed: int | None = None
    suppressions_added: int | None = None
    repos_most_open: list[Count] | None = None


class AgentReputation(BaseModel):
    """An agent's reputation in one repository at the end of the day (agents/reputation), and the day's outcomes."""

    repo: str
    agent: str
    score: float  # the Wilson lower bound of its positive share, with the prior: 0..1
    positive: int
    negative: int
    positive_today: int = 0
    negative_today: int = 0
    by_kind: dict[str, int] = Field(default_factory=dict)  # outcomes so far, by kind


class CoEJob(BaseModel):
    """One CoE job active at the end of the day or finished that day: its record, and its spend from the ledger."""

    repo: str
    domain: str
    job: str
    status: str
    depth: str
    spent_usd: float  # so far: committed steps and answers that could not be used
    budget_usd: float
    model_calls: int
    tokens_in: int
    tokens_out: int
    open_questions: int  # escalations waiting for a human
    mean_confidence: float | None = None  # the Confidence Analyzer's mean rating, once it has run
    pr_url: str | None = None


class CoEEscalation(BaseModel):
    """A question a CoE job asked a human that day."""

    repo: str
    job: str
    n: int
    kind: str
    step: str
    status: str  # at the end of the day
    issue_number: int | None = None


class CoEDay(BaseModel):
    jobs_active: int = 0  # jobs whose record changed that day
    jobs_started: int = 0  # first record version that day
    jobs_done: int = 0  # became done that day
    jobs_failed: int = 0  # became failed or cancelled that day
    jobs_parked: int = 0  # parked at the end of the day: waiting for a human
    jobs_running: int = 0  # queued or running at the end of the day
    jobs_total: int = 0  # active at the end of the day or finished that day; `jobs` lists the first JOB_ROWS
    jobs: list[CoEJob] = Field(default_factory=list)
    # What the steps committed that day cost (their rows in the decision ledger).
    spend: Totals = Field(default_factory=Totals)
    escalations_opened: list[CoEEscalation] = Field(default_factory=list)
    unreadable_records: int = 0  # job records that are not a valid Job (skipped)
    handoffs_created: int = 0
    handoffs_claimed: int = 0

    @property
    def quiet(self) -> bool:
        return not (
            self.jobs_total
            or self.spend.steps
            or self.escalations_opened
            or self.handoffs_created
            or self.handoffs_claimed
        )


class Conversation(BaseModel):
    """Agents' messages of one conversation (correlation id) sent that day."""

    correlation_id: str
    repo: str
    messages: int
    participants: list[str]  # senders and addressees, in the order they first appear
    outcome: str  # escalated (someone escalated) | answered (a result came back) | open
    undelivered: int = 0  # messages that went to the dead letters


class ConversationsDay(BaseModel):
    messages: int = 0
    total: int = 0  # conversations; `listed` holds the first CONVERSATION_ROWS, oldest first
    listed: list[Conversation] = Field(default_factory=list)


class Health(BaseModel):
    run_failures: int = 0
    run_timeouts: int = 0
    dead_letters: int = 0  # deliveries received that day that went to the dead letters
    failing: int = 0  # received that day, failed, still being retried
    queued: int = 0  # received that day, not handled yet
    retried_deliveries: int = 0  # handled after more than one attempt
    abandoned_runs: int = 0  # runs a dead worker left; another attempt took over
    # The LLM circuit breaker's openings that day, of the whole platform (one breaker for everyone).
    breaker_trips: int = 0
    top_errors: list[RunError] = Field(default_factory=list)


class Headline(BaseModel):
    events: int = 0
    events_by_status: dict[str, int] = Field(default_factory=dict)
    agent_runs: int = 0
    outputs_published: int = 0
    outputs_edited: int = 0
    decisions: dict[str, int] = Field(default_factory=dict)  # by rung
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0  # the ledger's LLM spend of agents, outside jobs
    coe_cost_usd: float = 0.0  # the ledger's CoE job steps committed that day (CoEDay.spend)
    budget_usd: float | None = None  # compared with the total

    @property
    def decisions_total(self) -> int:
        return sum(self.decisions.values())

    @property
    def total_cost_usd(self) -> float:
        return self.cost_usd + self.coe_cost_usd

    @property
    def without_llm_share(self) -> float | None:
        return without_llm_share(self.decisions)


class DailyReport(BaseModel):
    date: date
    timezone: str
    start: str  # the day's bounds, ISO 8601 with offset
    end: str
    generated_at: str
    complete: bool  # False while the day is not over
    headline: Headline = Field(default_factory=Headline)
    health: Health = Field(default_factory=Health)
    agents: list[AgentDay] = Field(default_factory=list)
    outputs: list[OutputCounts] = Field(default_factory=list)
    events_by_kind: list[Count] = Field(default_factory=list)
    wowvision: WowVisionDay = Field(default_factory=WowVisionDay)
    coe: CoEDay = Field(default_factory=CoEDay)
    reputation: list[AgentReputation] = Field(default_factory=list)  # by repository, best score first
    conversations: ConversationsDay = Field(default_factory=ConversationsDay)
    audit: list[Count] = Field(default_factory=list)
    links: list[Link] = Field(default_factory=list)
    series: list[DaySeries] = Field(default_factory=list)  # SERIES_DAYS days, oldest first, ending on `date`
    first_day: datetime.date | None = None  # the day of the oldest delivery or decision: how far back a trend can go
    notes: list[str] = Field(default_factory=list)  # what is missing or partial

    @property
    def empty(self) -> bool:
        h = self.headline
        return not (
            h.events
            or h.agent_runs
            or h.outputs_published
            or h.outputs_edited
            or h.decisions_total
            or self.coe.jobs_active
            or self.coe.spend.steps
            or self.audit
        )

    def previous_days(self) -> list[DaySeries]:
        """The TREND_DAYS days before the report's day that the store has data for."""
        before = [day for day in self.series if day.date < self.date][-TREND_DAYS:]
        if self.first_day is None:
            return []
        return [day for day in before if day.date >= self.first_day]
