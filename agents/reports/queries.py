"""The daily report from the store: aggregate SQL only, the same on SQLite and PostgreSQL.

Every figure is a GROUP BY in the database; Python only arranges the grouped rows.
Days are cut in the report's time zone: the bounds are computed here (zoneinfo, so a
23- or 25-hour day is right) and compared as UTC instants, which is also how both
databases hold our timestamps. The 14-day series puts each row in its day with one
CASE over those bounds, so one scan per table serves the chart, the trend and the day.
Spend comes from the decision ledger alone (agents/ledger.py): agents' rows are the
agents' line, CoE jobs' rows the CoE's (the steps each day committed; a job's row in the
CoE table adds the answers it could not use).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, distinct, func, or_, select
from sqlalchemy.orm import aliased

from agents.domain.job import Totals
from agents.reports.coe_queries import CoeQueries
from agents.reports.days import ReportDay
from agents.reports.message_queries import MessageQueries
from agents.reports.model import (
    FAILED_RUN,
    AgentDay,
    Count,
    DailyReport,
    DaySeries,
    Headline,
    Health,
    Link,
    OutputCounts,
    RunError,
    WowVisionDay,
)
from agents.reports.reputation_queries import ReputationQueries
from agents.reports.scoped import ScopedQueries, bucket, scope_for, sum_if
from agents.store.db import Store
from agents.store.tables import AgentRun, AuditEntry, BreakerTrip, Decision, InboxRecord, PublishedOutput

WOWVISION = "wowvision"
TOP = 10
LINKS = 30
ERROR_TEXT = 160  # characters of an error message that make its group


def build_daily_report(
    store: Store,
    day: date,
    tz: str | ZoneInfo = "UTC",
    *,
    budget_usd: float | None = None,
    installation_id: int | None = None,
    now: datetime | None = None,
) -> DailyReport:
    """The report for `day` in time zone `tz`, read from the store in one consistent snapshot."""
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    rd = ReportDay(day, zone)
    now = now or datetime.now(UTC)
    with store.session() as session:
        if store.engine.dialect.name == "postgresql":
            # One snapshot for all the queries, so the figures agree with each other.
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        scope = scope_for(session, installation_id)
        return _Builder(session, rd, scope).build(budget_usd=budget_usd, now=now)


def first_day(store: Store, tz: str | ZoneInfo = "UTC", *, installation_id: int | None = None) -> date | None:
    """The first day the store has data for (a delivery or a decision), in the report's time zone."""
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    with store.reading() as session:
        return _Builder(session, ReportDay(date.today(), zone), scope_for(session, installation_id))._first_day()


class _Builder(ScopedQueries):
    # -- the report

    def build(self, *, budget_usd: float | None, now: datetime) -> DailyReport:
        series = {i: DaySeries(date=d) for i, d in enumerate(self.rd.series_days)}
        agents: dict[str, AgentDay] = defaultdict(lambda: AgentDay(agent=""))
        headline, health = Headline(budget_usd=budget_usd), Health()

        self._events(series, headline, health)
        health.breaker_trips = self._breaker_trips()
        self._runs(series, agents, health)
        coe_spend = self._spend(series, agents, headline)
        outputs = self._outputs(series, agents, headline)
        for name, agent in agents.items():
            agent.agent = name
        headline.agent_runs = series[self.today].runs
        reputation = ReputationQueries(self.session, self.rd, self.scope)

        report = DailyReport(
            date=self.rd.day,
            timezone=self.rd.tz.key,
            start=self.rd.start.astimezone(self.rd.tz).isoformat(),
            end=self.rd.end.astimezone(self.rd.tz).isoformat(),
            generated_at=now.astimezone(self.rd.tz).isoformat(timespec="seconds"),
            complete=now >= self.rd.end,
            headline=headline,
            health=health,
            agents=sorted(agents.values(), key=lambda a: (-a.runs, -a.decisions_total, a.agent)),
            outputs=outputs,
            events_by_kind=self._event_kinds(),
            wowvision=self._wowvision(agents.get(WOWVISION), reputation.findings_fixed()),
            coe=CoeQueries(self.session, self.rd, self.scope).day(coe_spend),
            reputation=reputation.rows(),
            conversations=MessageQueries(self.session, self.rd, self.scope).day(),
            audit=self._audit(),
            links=self._links(),
            series=[series[i] for i in sorted(series)],
            first_day=self._first_day(),
        )
        report.notes = notes_for(report, now)
        return report

    def _events(self, series: dict[int, DaySeries], headline: Headline, health: Health) -> None:
        rows = self._inbox_scope(
            select(
                bucket(InboxRecord.received_at, self.bounds).label("day"),
                InboxRecord.status.label("status"),
                InboxRecord.attempts.label("attempts"),
            ).where(self._in_window(InboxRecord.received_at))
        ).subquery()
        grouped = self.session.execute(
            select(rows.c.day, rows.c.status, func.count(), sum_if(rows.c.attempts > 1)).group_by(
                rows.c.day, rows.c.status
            )
        )
        for day, status, count, retried in grouped:
            series[day].events += count
            if day == self.today:
                headline.events += count
                headline.events_by_status[status] = count
                if status == "done":
                    health.retried_deliveries = int(retried)
        by_status = headline.events_by_status
        health.dead_letters = by_status.get("dead", 0)
        health.failing = by_status.get("failed", 0)
        health.queued = by_status.get("queued", 0)

    def _breaker_trips(self) -> int:
        """The LLM breaker is the platform's, not an installation's: its trips show in every report."""
        return self.session.scalar(select(func.count()).where(self._on_day(BreakerTrip.opened_at))) or 0

    def _event_kinds(self) -> list[Count]:
        count = func.count().label("n")
        rows = self.session.execute(
            self._inbox_scope(
                select(InboxRecord.event, InboxRecord.action, count)
                .where(self._on_day(InboxRecord.received_at))
                .group_by(InboxRecord.event, InboxRecord.action)
                .order_by(count.desc(), InboxRecord.event, InboxRecord.action)
                .limit(TOP)
            )
        )
        return [Count(name=f"{event}.{action}" if action else event, count=n) for event, action, n in rows]

    def _runs(self, series: dict[int, DaySeries], agents: dict[str, AgentDay], health: Health) -> None:
        failed = AgentRun.status.in_(FAILED_RUN)
        per_day = self._runs_scope(
            select(bucket(AgentRun.started_at, self.bounds).label("day"), AgentRun.status.label("status")).where(
                self._in_window(AgentRun.started_at)
            )
        ).subquery()
        for day, status, count in self.session.execute(
            select(per_day.c.day, per_day.c.status, func.count()).group_by(per_day.c.day, per_day.c.status)
        ):
            series[day].runs += count
            if status in FAILED_RUN:
                series[day].run_failures += count
            if day == self.today:
                if status in FAILED_RUN:
                    health.run_failures += count
                if status == "timeout":
                    health.run_timeouts += count
                if status == "abandoned":
                    health.abandoned_runs += count

        # Percentiles by nearest rank (the smallest duration with at least p% of the runs at
        # or below it), with window functions both databases have.
        timed = AgentRun.duration_ms.isnot(None)
        ranked = self._runs_scope(
            select(
                AgentRun.agent.label("agent"),
                AgentRun.delivery_id.label("delivery_id"),
                AgentRun.status.label("status"),
                AgentRun.duration_ms.label("duration_ms"),
                func.row_number()
                .over(partition_by=(AgentRun.agent, timed), order_by=AgentRun.duration_ms)
                .label("rank"),
                func.count(AgentRun.duration_ms).over(partition_by=AgentRun.agent).label("timed"),
            ).where(self._on_day(AgentRun.started_at))
        ).subquery()

        def percentile(p: int) -> Any:
            reached = and_(ranked.c.duration_ms.isnot(None), ranked.c.rank * 100 >= p * ranked.c.timed)
            return func.min(case((reached, ranked.c.duration_ms)))

        for agent, runs, wakes, ok, failures, abandoned, running, p50, p95 in self.session.execute(
            select(
                ranked.c.agent,
                func.count(),
                func.count(distinct(ranked.c.delivery_id)),
                sum_if(ranked.c.status == "ok"),
                sum_if(ranked.c.status.in_(FAILED_RUN)),
                sum_if(ranked.c.status == "abandoned"),
                sum_if(ranked.c.status == "running"),
                percentile(50),
                percentile(95),
            ).group_by(ranked.c.agent)
        ):
            a = agents[agent]
            a.runs, a.wakes, a.ok, a.failures = runs, wakes, int(ok), int(failures)
            a.abandoned, a.running = int(abandoned), int(running)
            a.p50_ms, a.p95_ms = p50, p95

        error = func.substr(func.coalesce(AgentRun.error, ""), 1, ERROR_TEXT).label("error")
        count = func.count().label("n")
        errors = self._runs_scope(
            select(AgentRun.agent, AgentRun.status, error, count)
            .where(self._on_day(AgentRun.started_at), failed)
            .group_by(AgentRun.agent, AgentRun.status, error)
            .order_by(count.desc(), AgentRun.agent)
            .limit(5)
        )
        health.top_errors = [
            RunError(agent=a, status=s, error=e, count=n) for a, s, e, n in self.session.execute(errors)
        ]

    def _spend(self, series: dict[int, DaySeries], agents: dict[str, AgentDay], headline: Headline) -> Totals:
        """Decisions and spend, from one scan of the ledger's 14 days. Agents' rows (outside jobs) count by
        agent and rung; CoE jobs' rows count as the steps they committed (settled rows), the day's and each
        day's cost, which is the CoE's own line of the spend. Returns the CoE's figures for the day."""
        in_job = Decision.job_id.isnot(None)
        rows = self._ledger_scope(
            select(
                bucket(Decision.created_at, self.bounds).label("day"),
                in_job.label("in_job"),
                Decision.agent.label("agent"),
                Decision.rung.label("rung"),
                Decision.tokens_in.label("tokens_in"),
                Decision.tokens_out.label("tokens_out"),
                Decision.cost_usd.label("cost_usd"),
                Decision.model_calls.label("model_calls"),
            ).where(self._in_window(Decision.created_at), or_(~in_job, Decision.status == "settled"))
        ).subquery()
        grouped = self.session.execute(
            select(
                rows.c.day,
                rows.c.in_job,
                rows.c.agent,
                rows.c.rung,
                func.count(),
                *[
                    func.coalesce(func.sum(rows.c[name]), 0)
                    for name in ("tokens_in", "tokens_out", "cost_usd", "model_calls")
                ],
            ).group_by(rows.c.day, rows.c.in_job, rows.c.agent, rows.c.rung)
        )
        coe = Totals()
        for day, job_rows, agent, rung, count, tokens_in, tokens_out, cost, calls in grouped:
            s = series[day]
            if job_rows:
                s.coe_cost_usd += float(cost)
                if day == self.today:
                    coe.steps += count
                    coe.cost_usd += float(cost)
                    coe.tokens_in += int(tokens_in)
                    coe.tokens_out += int(tokens_out)
                    coe.model_calls += int(calls)
                continue
            s.decisions[rung] = s.decisions.get(rung, 0) + count
            s.cost_usd += float(cost)
            if day == self.today:
                a = agents[agent]
                a.decisions[rung] = count
                a.tokens_in += int(tokens_in)
                a.tokens_out += int(tokens_out)
                a.cost_usd += float(cost)
                headline.decisions[rung] = headline.decisions.get(rung, 0) + count
                headline.tokens_in += int(tokens_in)
                headline.tokens_out += int(tokens_out)
                headline.cost_usd += float(cost)
        headline.coe_cost_usd = coe.cost_usd
        return coe

    def _outputs(
        self, series: dict[int, DaySeries], agents: dict[str, AgentDay], headline: Headline
    ) -> list[OutputCounts]:
        rows = self._repo_scope(
            select(
                bucket(PublishedOutput.created_at, self.bounds).label("day"),
                PublishedOutput.agent.label("agent"),
                PublishedOutput.kind.label("kind"),
            ).where(self._in_window(PublishedOutput.created_at)),
            PublishedOutput.repo,
        ).subquery()
        kinds: dict[str, OutputCounts] = {}
        for day, agent, kind, count in self.session.execute(
            select(rows.c.day, rows.c.agent, rows.c.kind, func.count()).group_by(rows.c.day, rows.c.agent, rows.c.kind)
        ):
            series[day].outputs += count
            if day == self.today:
                agents[agent].outputs[kind] = count
                kinds.setdefault(kind, OutputCounts(kind=kind)).published += count
                headline.outputs_published += count
        edited = self._repo_scope(
            select(PublishedOutput.kind, func.count())
            .where(self._on_day(PublishedOutput.updated_at), PublishedOutput.created_at < self.rd.start)
            .group_by(PublishedOutput.kind),
            PublishedOutput.repo,
        )
        for kind, count in self.session.execute(edited):
            kinds.setdefault(kind, OutputCounts(kind=kind)).edited += count
            headline.outputs_edited += count
        return sorted(kinds.values(), key=lambda k: (-k.published - k.edited, k.kind))

    def _links(self) -> list[Link]:
        touched = or_(self._on_day(PublishedOutput.created_at), self._on_day(PublishedOutput.updated_at))
        rows = self.session.execute(
            self._repo_scope(
                select(PublishedOutput.agent, PublishedOutput.kind, PublishedOutput.repo, PublishedOutput.url)
                .where(touched, PublishedOutput.url.isnot(None))
                .order_by(PublishedOutput.updated_at.desc(), PublishedOutput.id.desc())
                .limit(LINKS),
                PublishedOutput.repo,
            )
        )
        return [Link(agent=a, kind=k, repo=r, url=u) for a, k, r, u in rows]

    def _wowvision(self, agent: AgentDay | None, fixed: int) -> WowVisionDay:
        count = func.count().label("n")
        rules = self.session.execute(
            self._repo_scope(
                select(Decision.rule, count)
                .where(Decision.agent == WOWVISION, self._on_day(Decision.created_at))
                .group_by(Decision.rule)
                .order_by(count.desc(), Decision.rule)
                .limit(TOP),
                Decision.repo,
            )
        )
        # Each review writes a ledger row per finding, keyed by its fingerprint (input_hash):
        # a fingerprint first seen this day is a finding opened this day.
        found = and_(Decision.agent == WOWVISION, Decision.rung == "deterministic", Decision.input_hash.isnot(None))
        earlier = aliased(Decision)
        seen_before = (
            select(earlier.id)
            .where(
                earlier.agent == WOWVISION,
                earlier.rung == "deterministic",
                earlier.input_hash == Decision.input_hash,
                earlier.created_at < self.rd.start,
            )
            .exists()
        )
        opened = self.session.scalar(
            self._repo_scope(
                select(func.count(distinct(Decision.input_hash))).where(
                    found, self._on_day(Decision.created_at), ~seen_before
                ),
                Decision.repo,
            )
        )
        distinct_findings = func.count(distinct(Decision.input_hash)).label("n")
        repos = self.session.execute(
            self._repo_scope(
                select(Decision.repo, distinct_findings)
                .where(found, self._on_day(Decision.created_at), Decision.repo.isnot(None))
                .group_by(Decision.repo)
                .order_by(distinct_findings.desc(), Decision.repo)
                .limit(TOP),
                Decision.repo,
            )
        )
        suppressions = self.session.scalar(
            self._installation_scope(
                select(func.count()).where(AuditEntry.action == "wowvision.ignore", self._on_day(AuditEntry.at)),
                AuditEntry.installation_id,
            )
        )
        return WowVisionDay(
            decisions=agent.decisions_total if agent else 0,
            top_rules=[Count(name=rule, count=n) for rule, n in rules],
            outputs=dict(agent.outputs) if agent else {},
            findings_opened=opened or 0,
            findings_fixed=fixed,
            suppressions_added=suppressions or 0,
            repos_most_open=[Count(name=repo, count=n) for repo, n in repos],
        )

    def _audit(self) -> list[Count]:
        count = func.count().label("n")
        rows = self.session.execute(
            self._installation_scope(
                select(AuditEntry.action, count)
                .where(self._on_day(AuditEntry.at))
                .group_by(AuditEntry.action)
                .order_by(count.desc(), AuditEntry.action),
                AuditEntry.installation_id,
            )
        )
        return [Count(name=action, count=n) for action, n in rows]

    def _first_day(self) -> date | None:
        agents_rows = select(func.min(Decision.created_at)).where(Decision.job_id.is_(None))
        firsts = [
            self.session.scalar(self._inbox_scope(select(func.min(InboxRecord.received_at)))),
            self.session.scalar(self._repo_scope(agents_rows, Decision.repo)),
        ]
        known = [self.rd.local_date(f) for f in firsts if f is not None]
        return min(known) if known else None


def notes_for(report: DailyReport, now: datetime) -> list[str]:
    """What a reader should know is missing or partial, in plain words."""
    notes: list[str] = []
    h = report.headline
    if not report.complete:
        local = now.astimezone(ZoneInfo(report.timezone))
        notes.append(f"The day is not over: figures up to {local:%H:%M} {report.timezone}.")
    if report.empty:
        notes.append("No activity was recorded on this day: no events, agent runs, decisions or outputs.")
        return notes
    if h.events and not h.agent_runs:
        notes.append("Events were received but no agent ran on them (all ignored, or still queued).")
    if report.health.queued:
        notes.append(f"{report.health.queued} event(s) received this day are still queued, not handled yet.")
    if h.agent_runs and not h.decisions_total:
        notes.append(
            "The decision ledger has no entries for this day: decisions by rung, tokens and LLM cost "
            "are not available (the agents that ran do not record decisions yet)."
        )
    if h.budget_usd is None:
        notes.append("No LLM budget is set (WAOOAW_REPORT_BUDGET_USD): spend is shown without a budget.")
    previous = report.previous_days()
    if len(previous) < 7:
        notes.append(f"The trend compares with {len(previous)} earlier day(s) with data, not 7.")
    if report.coe.unreadable_records:
        notes.append(f"{report.coe.unreadable_records} CoE job record(s) are not valid job records and were skipped.")
    return notes
