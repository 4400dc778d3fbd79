"""The daily report's data: what the store says about one day, as plain values.

The same model is built from the store (`agents.reports.queries`), served as JSON by
the app's report API and read back by `waooaw report daily` in API mode, so the
Markdown and the charts are rendered from one shape whichever way the data came.

A figure the store does not record (WowVision findings, breaker trips, CoE job
outcomes) is None, never 0: the renderer says "no data yet" for it.
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

RUNGS = ("deterministic", "cached", "llm")  # the ladder, in order; anything else is listed after
FAILED_RUN = ("error", "timeout")
TREND_DAYS = 7
SERIES_DAYS = 14


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
    cost_usd: float = 0.0

    @property
    def decisions_total(self) -> int:
        return sum(self.decisions.values())


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
    # None where the store holds no such record (findings fixed are not recorded yet).
    findings_opened: int | None = None
    findings_fixed: int | None = None
    suppressions_added: int | None = None
    repos_most_open: list[Count] | None = None


class CoEDay(BaseModel):
    jobs_active: int = 0  # jobs that saved context that day
    jobs_started: int = 0  # ... whose first context version is from that day
    handoffs_created: int = 0
    handoffs_claimed: int = 0
    job_ids: list[str] = Field(default_factory=list)
    # Job outcomes are not in the store yet.
    jobs_finished: int | None = None
    jobs_escalated: int | None = None


class Health(BaseModel):
    run_failures: int = 0
    run_timeouts: int = 0
    dead_letters: int = 0  # deliveries received that day that went to the dead letters
    failing: int = 0  # received that day, failed, still being retried
    queued: int = 0  # received that day, not handled yet
    retried_deliveries: int = 0  # handled after more than one attempt
    abandoned_runs: int = 0  # runs a dead worker left; another attempt took over
    breaker_trips: int | None = None  # not recorded in the store yet
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
    cost_usd: float = 0.0
    budget_usd: float | None = None

    @property
    def decisions_total(self) -> int:
        return sum(self.decisions.values())

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
    audit: list[Count] = Field(default_factory=list)
    links: list[Link] = Field(default_factory=list)
    series: list[DaySeries] = Field(default_factory=list)  # SERIES_DAYS days, oldest first, ending on `date`
    first_day: date | None = None  # the day of the oldest delivery or decision: how far back a trend can go
    notes: list[str] = Field(default_factory=list)  # what is missing or partial

    @property
    def empty(self) -> bool:
        h = self.headline
        return not (h.events or h.agent_runs or h.outputs_published or h.outputs_edited or h.decisions_total
                    or self.coe.jobs_active or self.audit)

    def previous_days(self) -> list[DaySeries]:
        """The TREND_DAYS days before the report's day that the store has data for."""
        before = [day for day in self.series if day.date < self.date][-TREND_DAYS:]
        if self.first_day is None:
            return []
        return [day for day in before if day.date >= self.first_day]
