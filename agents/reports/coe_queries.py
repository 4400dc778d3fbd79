"""The CoE's part of the daily report: job records (agent wowdomain, scope `job-…`); their spend is the ledger's."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import aliased

from agents.context.models import ContextVersion, Handoff
from agents.domain.job import ACTIVE, Job, Totals, job_at
from agents.domain.job import AGENT as JOB_AGENT
from agents.domain.phases import PHASES_BY_ID
from agents.reports.model import JOB_ROWS, CoEDay, CoEEscalation, CoEJob
from agents.reports.scoped import ScopedQueries, sum_if
from agents.store.tables import Decision

JOB_SCOPE = "job-%"  # a CoE job's record; its steps are `<job>:<step>`, its domain lock `domain-<slug>`
STEP_SCOPE = "job-%:%"
CONFIDENCE_STEP = PHASES_BY_ID["validation"].step("confidence-analyzer")


class CoeQueries(ScopedQueries):
    """The CoE's jobs of the day, their spend and confidence, and the day's handoffs."""

    def day(self, spend: Totals) -> CoEDay:
        record = and_(
            ContextVersion.agent == JOB_AGENT,
            ContextVersion.scope.like(JOB_SCOPE),
            ~ContextVersion.scope.like(STEP_SCOPE),
        )
        # Per job: its record at the end of the day and at its start, when it began, when it last changed.
        per_job = self._installation_scope(
            select(
                ContextVersion.installation_id,
                ContextVersion.repo,
                ContextVersion.scope,
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
            return and_(
                alias.installation_id == per_job.c.installation_id,
                alias.repo == per_job.c.repo,
                alias.agent == JOB_AGENT,
                alias.scope == per_job.c.scope,
                alias.version == column,
            )

        changed_today = per_job.c.last_at >= self.rd.start
        rows = self.session.execute(
            select(
                per_job.c.installation_id,
                per_job.c.repo,
                per_job.c.first_at,
                changed_today,
                end.data,
                start.data["status"].as_string(),
                start.data["escalations"],
            )
            .join(end, version_of(end, per_job.c.at_end))
            .outerjoin(start, version_of(start, per_job.c.at_start))
            .where(or_(changed_today, end.data["status"].as_string().in_(sorted(ACTIVE))))
            .order_by(per_job.c.first_at, per_job.c.scope)
        )
        day = CoEDay(spend=spend)
        listed: list[tuple[int, Job]] = []
        for installation, repo, first_at, changed, data, status_before, escalations_before in rows:
            try:
                job = job_at(repo, data)
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
                CoEEscalation(
                    repo=job.repo,
                    job=job.id,
                    n=e.n,
                    kind=e.kind,
                    step=e.step,
                    status=e.status,
                    issue_number=e.issue_number,
                )
                for e in job.escalations
                if e.n not in asked_before
            ]
            if job.status in ACTIVE or became:
                listed.append((installation, job))
        day.jobs_total = len(listed)
        confidence = self._mean_confidence(listed[:JOB_ROWS])
        spent = self._job_spend(listed[:JOB_ROWS])
        day.jobs = [
            _job_row(job, spent.get((i, job.repo, job.id), Totals()), confidence.get((i, job.repo, job.id)))
            for i, job in listed[:JOB_ROWS]
        ]
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
            select(
                Decision.installation_id,
                Decision.repo,
                Decision.job_id,
                func.coalesce(func.sum(Decision.cost_usd), 0.0),
                of_steps(Decision.tokens_in),
                of_steps(Decision.tokens_out),
                of_steps(Decision.model_calls),
            )
            .where(Decision.job_id.in_(sorted({job.id for _, job in jobs})), Decision.created_at < self.rd.end)
            .group_by(Decision.installation_id, Decision.repo, Decision.job_id)
        )
        return {
            (installation, repo, job): Totals(
                cost_usd=float(cost), tokens_in=int(tokens_in), tokens_out=int(tokens_out), model_calls=int(calls)
            )
            for installation, repo, job, cost, tokens_in, tokens_out, calls in rows
        }

    def _mean_confidence(self, jobs: list[tuple[int, Job]]) -> dict[tuple[int, str, str], float]:
        """The Confidence Analyzer's mean rating of each job that has reached it: one read for all the jobs."""
        if not jobs:
            return {}
        wanted = {(installation, job.repo, f"{job.id}:{CONFIDENCE_STEP}") for installation, job in jobs}
        rows = self.session.execute(
            select(
                ContextVersion.installation_id,
                ContextVersion.repo,
                ContextVersion.scope,
                ContextVersion.data[("package", "deliverable", "skills")],
            ).where(
                ContextVersion.scope.in_(sorted({scope for _, _, scope in wanted})),
                ContextVersion.version == 1,
                ContextVersion.created_at < self.rd.end,
            )
        )
        means = {}
        for installation, repo, scope, skills in rows:
            ratings = [
                s["confidence"]
                for s in skills or []
                if isinstance(s, dict) and isinstance(s.get("confidence"), int | float)
            ]
            if ratings and (installation, repo, scope) in wanted:
                means[(installation, repo, scope.partition(":")[0])] = sum(ratings) / len(ratings)
        return means

    def _handoffs(self) -> tuple[int, int]:
        created, claimed = self.session.execute(
            self._installation_scope(
                select(sum_if(self._on_day(Handoff.created_at)), sum_if(self._on_day(Handoff.claimed_at))).where(
                    or_(self._on_day(Handoff.created_at), self._on_day(Handoff.claimed_at))
                ),
                Handoff.installation_id,
            )
        ).one()
        return int(created), int(claimed)


def _job_row(job: Job, spent: Totals, mean_confidence: float | None) -> CoEJob:
    return CoEJob(
        repo=job.repo,
        domain=job.domain,
        job=job.id,
        status=job.status,
        depth=job.depth,
        spent_usd=spent.cost_usd,
        budget_usd=job.budget_usd,
        model_calls=spent.model_calls,
        tokens_in=spent.tokens_in,
        tokens_out=spent.tokens_out,
        open_questions=sum(e.status == "open" for e in job.escalations),
        mean_confidence=mean_confidence,
        pr_url=job.pr_url,
    )
