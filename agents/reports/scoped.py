"""Whose data a report shows (every installation, or one), and the filters that keep a query to it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVarTuple

from sqlalchemy import Select, and_, case, func, or_, select
from sqlalchemy.orm import Session

from agents.reports.days import ReportDay
from agents.reports.model import SERIES_DAYS
from agents.store.tables import AgentRun, Decision, InboxRecord, Installation

# a scoped query keeps its columns' types
Columns = TypeVarTuple("Columns")


@dataclass(frozen=True)
class ReportScope:
    """Whose data a report shows: every installation (None) or one, with its repositories."""

    installation_id: int | None = None
    repos: tuple[str, ...] = ()


def scope_for(session: Session, installation_id: int | None) -> ReportScope:
    if installation_id is None:
        return ReportScope()
    repos = session.scalar(select(Installation.repos).where(Installation.id == installation_id)) or []
    return ReportScope(installation_id, tuple(repos))


def bucket(column: Any, bounds: list[datetime]) -> Any:
    """The index of the series day a timestamp falls in (newest day tested first: the busiest)."""
    return case(*[(column >= bounds[i], i) for i in range(len(bounds) - 2, -1, -1)], else_=-1)


def sum_if(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


class ScopedQueries:
    """Queries of one report's day and scope: the filters every section of the report applies."""

    def __init__(self, session: Session, rd: ReportDay, scope: ReportScope) -> None:
        self.session = session
        self.rd = rd
        self.scope = scope
        self.bounds = rd.series_bounds
        self.today = SERIES_DAYS - 1  # the report's day is the last of the series

    # -- scope filters (no filter for an operator's report over every installation)

    def _inbox_scope(self, query: Select[*Columns]) -> Select[*Columns]:
        if self.scope.installation_id is None:
            return query
        return query.where(InboxRecord.installation_id == self.scope.installation_id)

    def _runs_scope(self, query: Select[Any]) -> Select[Any]:
        if self.scope.installation_id is None:
            return query
        mine = select(InboxRecord.delivery_id).where(InboxRecord.installation_id == self.scope.installation_id)
        return query.where(AgentRun.delivery_id.in_(mine))

    def _repo_scope(self, query: Select[*Columns], column: Any) -> Select[*Columns]:
        if self.scope.installation_id is None:
            return query
        return query.where(column.in_(self.scope.repos))

    def _installation_scope(self, query: Select[*Columns], column: Any) -> Select[*Columns]:
        if self.scope.installation_id is None:
            return query
        return query.where(column == self.scope.installation_id)

    def _ledger_scope(self, query: Select[Any]) -> Select[Any]:
        """Agents' rows by their repository, jobs' rows by their installation (as the jobs' records)."""
        if self.scope.installation_id is None:
            return query
        return query.where(
            or_(
                and_(Decision.job_id.is_(None), Decision.repo.in_(self.scope.repos)),
                and_(Decision.job_id.isnot(None), Decision.installation_id == self.scope.installation_id),
            )
        )

    def _in_window(self, column: Any) -> Any:
        return and_(column >= self.bounds[0], column < self.bounds[-1])

    def _on_day(self, column: Any) -> Any:
        return and_(column >= self.rd.start, column < self.rd.end)
