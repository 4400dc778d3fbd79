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
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import Select, and_, case, distinct, func, or_, select
from sqlalchemy.orm import Session, aliased

from agents.store.db import Store
from agents.domain.job import ACTIVE, Job, Totals
from agents.domain.job import AGENT as JOB_AGENT
from agents.domain.phases import BY_ID as PHASES_BY_ID
from agents.context.models import ContextVersion, Handoff
from agents.store.tables import AgentRun, AuditEntry, BreakerTrip, Decision, InboxRecord, Installation, PublishedOutput
from agents.reports.model import (
    FAILED_RUN,
    SERIES_DAYS,
    AgentDay,
    JOB_ROWS,
    CoEDay,
    CoEEscalation,
    CoEJob,
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

WOWVISION = "wowvision"
TOP = 10
LINKS = 30
ERROR_TEXT = 160  # characters of an error message that make its group
JOB_SCOPE = "job-%"  # a CoE job's record; its steps are `<job>:<step>`, its domain lock `domain-<slug>`
STEP_SCOPE = "job-%:%"
CONFIDENCE_STEP = PHASES_BY_ID["validation"].step("confidence-analyzer")


@dataclass(frozen=True)
class ReportDay:
    """One day in a time zone, and the 14 days that end with it, as UTC bounds."""

    day: date
    tz: ZoneInfo

    def start_of(self, day: date) -> datetime:
        return datetime.combine(day, time.min, tzinfo=self.tz).astimezone(timezone.utc)

    @property
    def start(self) -> datetime:
        return self.start_of(self.day)

    @property
    def end(self) -> datetime:
        return self.start_of(self.day + timedelta(days=1))

    @property
    def series_days(self) -> list[date]:
        return [self.day - timedelta(days=n) for n in range(SERIES_DAYS - 1, -1, -1)]

    @property
    def series_bounds(self) -> list[datetime]:
        """SERIES_DAYS + 1 instants: day i of the series is [bounds[i], bounds[i + 1])."""
        return [self.start_of(d) for d in self.series_days] + [self.end]

    def local_date(self, instant: datetime) -> date:
        if instant.tzinfo is None:  # SQLite hands back the UTC wall clock
            instant = instant.replace(tzinfo=timezone.utc)
        return instant.astimezone(self.tz).date()


@dataclass(frozen=True)
class Scope:
    """Whose data a report shows: every installation (None) or one, with its repositories."""

    installation_id: int | None = None
    repos: tuple[str, ...] = ()


def scope_for(session: Session, installation_id: int | None) -> Scope:
    if installation_id is None:
        return Scope()
    repos = session.scalar(select(Installation.repos).where(Installation.id == installation_id)) or []
    return Scope(installation_id, tuple(repos))


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
    now = now or datetime.now(timezone.utc)
    with store.session() as session:
        if store.engine.dialect.name == "postgresql":
            # One snapshot for all the queries, so the figures agree with each other.
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        scope = scope_for(session, installation_id)
        return _Builder(session, rd, scope).build(budget_usd=budget_usd, now=now)


# No delivery, run or decision is older; and a report reaches back SERIES_DAYS from its day,
# which near year 1 no calendar can.
EARLIEST_DAY = date(1970, 1, 1)


def parse_day(value: str, tz: str | ZoneInfo = "UTC", now: datetime | None = None) -> date:
    """`today`, `yesterday` (in the report's time zone) or YYYY-MM-DD from EARLIEST_DAY on; never a day still to come."""
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    today = (now or datetime.now(timezone.utc)).astimezone(zone).date()
    if value == "today":
        return today
    if value == "yesterday":
        return today - timedelta(days=1)
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"a report date is today, yesterday or YYYY-MM-DD, not {value!r}") from None
    if day > today:
        raise ValueError(f"{day} has not started yet in {zone.key} (today is {today})")
    if day < EARLIEST_DAY:
        raise ValueError(f"reports start on {EARLIEST_DAY}, not {day}")
    return day


def first_day(store: Store, tz: str | ZoneInfo = "UTC", *, installation_id: int | None = None) -> date | None:
    """The first day the store has data for (a delivery or a decision), in the report's time zone."""
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    with store.reading() as session:
        return _Builder(session, ReportDay(date.today(), zone), scope_for(session, installation_id))._first_day()


def _bucket(column: Any, bounds: list[datetime]) -> Any:
    """The index of the series day a timestamp falls in (newest day tested first: the busiest)."""
    return case(*[(column >= bounds[i], i) for i in range(len(bounds) - 2, -1, -1)], else_=-1)


def _sum_if(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


class _Builder:
    def __init__(self, session: Session, rd: ReportDay, scope: Scope) -> None:
        self.session = session
        self.rd = rd
        self.scope = scope
        self.bounds = rd.series_bounds
        self.today = SERIES_DAYS - 1  # the report's day is the last of the series

    # -- scope filters (no filter for an operator's report over every installation)

    def _inbox_scope(self, query: Select[Any]) -> Select[Any]:
        if self.scope.installation_id is None:
            return query
        return query.where(InboxRecord.installation_id == self.scope.installation_id)

    def _runs_scope(self, query: Select[Any]) -> Select[Any]:
        if self.scope.installation_id is None:
            return query
        mine = select(InboxRecord.delivery_id).where(InboxRecord.installation_id == self.scope.installation_id)
        return query.where(AgentRun.delivery_id.in_(mine))

    def _repo_scope(self, query: Select[Any], column: Any) -> Select[Any]:
        if self.scope.installation_id is None:
            return query
        return query.where(column.in_(self.scope.repos))

    def _installation_scope(self, query: Select[Any], column: Any) -> Select[Any]:
        if self.scope.installation_id is None:
            return query
        return query.where(column == self.scope.installation_id)

    def _ledger_scope(self, query: Select[Any]) -> Select[Any]:
        """Agents' rows by their repository, jobs' rows by their installation (as the jobs' records)."""
        if self.scope.installation_id is None:
            return query
        return query.where(or_(
            and_(Decision.job_id.is_(None), Decision.repo.in_(self.scope.repos)),
            and_(Decision.job_id.isnot(None), Decision.installation_id == self.scope.installation_id),
        ))  # fmt: skip

    def _in_window(self, column: Any) -> Any:
        return and_(column >= self.bounds[0], column < self.bounds[-1])

    def _on_day(self, column: Any) -> Any:
        return and_(column >= self.rd.start, column < self.rd.end)

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
            wowvision=self._wowvision(agents.get(WOWVISION)),
            coe=self._coe(coe_spend),
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
                _bucket(InboxRecord.received_at, self.bounds).label("day"),
                InboxRecord.status.label("status"),
                InboxRecord.attempts.label("attempts"),
            ).where(self._in_window(InboxRecord.received_at))
        ).subquery()
        grouped = self.session.execute(
            select(rows.c.day, rows.c.status, func.count(), _sum_if(rows.c.attempts > 1))
            .group_by(rows.c.day, rows.c.status)
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
            select(_bucket(AgentRun.started_at, self.bounds).label("day"), AgentRun.status.label("status"))
            .where(self._in_window(AgentRun.started_at))
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
                func.row_number().over(partition_by=(AgentRun.agent, timed), order_by=AgentRun.duration_ms).label("rank"),
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
                _sum_if(ranked.c.status == "ok"),
                _sum_if(ranked.c.status.in_(FAILED_RUN)),
                _sum_if(ranked.c.status == "abandoned"),
                _sum_if(ranked.c.status == "running"),
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
        health.top_errors = [RunError(agent=a, status=s, error=e, count=n) for a, s, e, n in self.session.execute(errors)]

    def _spend(self, series: dict[int, DaySeries], agents: dict[str, AgentDay], headline: Headline) -> Totals:
        """Decisions and spend, from one scan of the ledger's 14 days. Agents' rows (outside jobs) count by
        agent and rung; CoE jobs' rows count as the steps they committed (settled rows), the day's and each
        day's cost, which is the CoE's own line of the spend. Returns the CoE's figures for the day."""
        in_job = Decision.job_id.isnot(None)
        rows = self._ledger_scope(
            select(
                _bucket(Decision.created_at, self.bounds).label("day"),
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
                rows.c.day, rows.c.in_job, rows.c.agent, rows.c.rung, func.count(),
                *[func.coalesce(func.sum(rows.c[name]), 0)
                  for name in ("tokens_in", "tokens_out", "cost_usd", "model_calls")],
            ).group_by(rows.c.day, rows.c.in_job, rows.c.agent, rows.c.rung)
        )  # fmt: skip
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

    def _outputs(self, series: dict[int, DaySeries], agents: dict[str, AgentDay], headline: Headline) -> list[OutputCounts]:
        rows = self._repo_scope(
            select(
                _bucket(PublishedOutput.created_at, self.bounds).label("day"),
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

    def _wowvision(self, agent: AgentDay | None) -> WowVisionDay:
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
            .where(earlier.agent == WOWVISION, earlier.rung == "deterministic",
                   earlier.input_hash == Decision.input_hash, earlier.created_at < self.rd.start)
            .exists()
        )
        opened = self.session.scalar(
            self._repo_scope(
                select(func.count(distinct(Decision.input_hash))).where(found, self._on_day(Decision.created_at), ~seen_before),
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
            suppressions_added=suppressions or 0,
            repos_most_open=[Count(name=repo, count=n) for repo, n in repos],
        )

    # -- the CoE: job records (agent wowdomain, scope `job-…`); their spend is the ledger's

    def _coe(self, spend: Totals) -> CoEDay:
        record = and_(ContextVersion.agent == JOB_AGENT, ContextVersion.scope.like(JOB_SCOPE),
                      ~ContextVersion.scope.like(STEP_SCOPE))
        # Per job: its record at the end of the day and at its start, when it began, when it last changed.
        per_job = self._installation_scope(
            select(
                ContextVersion.installation_id, ContextVersion.repo, ContextVersion.scope,
                func.max(ContextVersion.version).label("at_end"),
                func.max(case((ContextVersion.created_at < self.rd.start, ContextVersion.version))).label("at_start"),
                func.min(ContextVersion.created_at).label("first_at"),
                func.max(ContextVersion.created_at).label("last_at"),
            )
            .where(record, ContextVersion.created_at < self.rd.end)
            .group_by(ContextVersion.installation_id, ContextVersion.repo, ContextVersion.scope),
            ContextVersion.installation_id,
        ).subquery()
        end, start = aliased(ContextVersion), aliased(ContextVersion)

        def version_of(alias: Any, column: Any) -> Any:
            return and_(alias.installation_id == per_job.c.installation_id, alias.repo == per_job.c.repo,
                        alias.agent == JOB_AGENT, alias.scope == per_job.c.scope, alias.version == column)

        changed_today = per_job.c.last_at >= self.rd.start
        rows = self.session.execute(
            select(per_job.c.installation_id, per_job.c.first_at, changed_today, end.data,
                   start.data["status"].as_string(), start.data["escalations"])
            .join(end, version_of(end, per_job.c.at_end))
            .outerjoin(start, version_of(start, per_job.c.at_start))
            .where(or_(changed_today, end.data["status"].as_string().in_(sorted(ACTIVE))))
            .order_by(per_job.c.first_at, per_job.c.scope)
        )
        day = CoEDay(spend=spend)
        listed: list[tuple[int, Job]] = []
        for installation, first_at, changed, data, status_before, escalations_before in rows:
            try:
                job = Job.model_validate(data)
            except ValidationError:
                day.unreadable_records += 1
                continue
            day.jobs_active += bool(changed)
            day.jobs_started += self.rd.local_date(first_at) == self.rd.day
            became = job.status != status_before
            day.jobs_done += became and job.status == "done"
            day.jobs_failed += became and job.status in ("failed", "cancelled")
            day.jobs_parked += job.status == "parked"
            day.jobs_running += job.status in ("queued", "running")
            asked_before = {e.get("n") for e in escalations_before or []}
            day.escalations_opened += [
                CoEEscalation(repo=job.repo, job=job.id, n=e.n, kind=e.kind, step=e.step, status=e.status,
                              issue_number=e.issue_number)
                for e in job.escalations if e.n not in asked_before
            ]
            if job.status in ACTIVE or became:
                listed.append((installation, job))
        day.jobs_total = len(listed)
        confidence = self._mean_confidence(listed[:JOB_ROWS])
        spent = self._job_spend(listed[:JOB_ROWS])
        day.jobs = [_job_row(job, spent.get((i, job.repo, job.id), Totals()), confidence.get((i, job.repo, job.id)))
                    for i, job in listed[:JOB_ROWS]]  # fmt: skip
        day.handoffs_created, day.handoffs_claimed = self._handoffs()
        return day

    def _job_spend(self, jobs: list[tuple[int, Job]]) -> dict[tuple[int, str, str], Totals]:
        """What each job had spent by the end of the day, from its ledger rows: every row's cost (steps and
        answers it could not use); its committed steps' tokens and model calls."""
        if not jobs:
            return {}
        settled = Decision.status == "settled"

        def of_steps(column: Any) -> Any:
            return func.coalesce(func.sum(case((settled, column), else_=0)), 0)

        rows = self.session.execute(
            select(Decision.installation_id, Decision.repo, Decision.job_id,
                   func.coalesce(func.sum(Decision.cost_usd), 0.0), of_steps(Decision.tokens_in),
                   of_steps(Decision.tokens_out), of_steps(Decision.model_calls))
            .where(Decision.job_id.in_(sorted({job.id for _, job in jobs})), Decision.created_at < self.rd.end)
            .group_by(Decision.installation_id, Decision.repo, Decision.job_id)
        )  # fmt: skip
        return {(installation, repo, job): Totals(cost_usd=float(cost), tokens_in=int(tokens_in),
                                                  tokens_out=int(tokens_out), model_calls=int(calls))
                for installation, repo, job, cost, tokens_in, tokens_out, calls in rows}  # fmt: skip

    def _mean_confidence(self, jobs: list[tuple[int, Job]]) -> dict[tuple[int, str, str], float]:
        """The Confidence Analyzer's mean rating of each job that has reached it: one read for all the jobs."""
        if not jobs:
            return {}
        wanted = {(installation, job.repo, f"{job.id}:{CONFIDENCE_STEP}") for installation, job in jobs}
        rows = self.session.execute(
            select(ContextVersion.installation_id, ContextVersion.repo, ContextVersion.scope,
                   ContextVersion.data[("package", "deliverable", "skills")])
            .where(ContextVersion.scope.in_(sorted({scope for _, _, scope in wanted})), ContextVersion.version == 1,
                   ContextVersion.created_at < self.rd.end)
        )
        means = {}
        for installation, repo, scope, skills in rows:
            ratings = [s["confidence"] for s in skills or []
                       if isinstance(s, dict) and isinstance(s.get("confidence"), int | float)]
            if ratings and (installation, repo, scope) in wanted:
                means[(installation, repo, scope.partition(":")[0])] = sum(ratings) / len(ratings)
        return means

    def _handoffs(self) -> tuple[int, int]:
        created, claimed = self.session.execute(
            self._installation_scope(
                select(_sum_if(self._on_day(Handoff.created_at)), _sum_if(self._on_day(Handoff.claimed_at)))
                .where(or_(self._on_day(Handoff.created_at), self._on_day(Handoff.claimed_at))),
                Handoff.installation_id,
            )
        ).one()
        return int(created), int(claimed)

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


def _job_row(job: Job, spent: Totals, mean_confidence: float | None) -> CoEJob:
    return CoEJob(
        repo=job.repo, domain=job.domain, job=job.id, status=job.status, depth=job.depth, spent_usd=spent.cost_usd,
        budget_usd=job.budget_usd, model_calls=spent.model_calls, tokens_in=spent.tokens_in,
        tokens_out=spent.tokens_out,
        open_questions=sum(e.status == "open" for e in job.escalations), mean_confidence=mean_confidence,
        pr_url=job.pr_url,
    )  # fmt: skip


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
        notes.append("The decision ledger has no entries for this day: decisions by rung, tokens and LLM cost "
                     "are not available (the agents that ran do not record decisions yet).")
    if h.budget_usd is None:
        notes.append("No LLM budget is set (WAOOAW_REPORT_BUDGET_USD): spend is shown without a budget.")
    previous = report.previous_days()
    if len(previous) < 7:
        notes.append(f"The trend compares with {len(previous)} earlier day(s) with data, not 7.")
    notes.append("WowVision findings fixed are not recorded in the store yet (opened ones and suppressions are).")
    if report.coe.unreadable_records:
        notes.append(f"{report.coe.unreadable_records} CoE job record(s) are not valid job records and were skipped.")
    return notes
