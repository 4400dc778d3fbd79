"""Agents' conversations in the daily report: the messages sent that day, by correlation id."""

from __future__ import annotations

from sqlalchemy import func, select

from agents.reports.model import CONVERSATION_ROWS, Conversation, ConversationsDay
from agents.reports.scoped import ScopedQueries, sum_if
from agents.store.tables import AgentMessage, InboxRecord


class MessageQueries(ScopedQueries):
    def day(self) -> ConversationsDay:
        on_day = self._on_day(AgentMessage.created_at)
        started = func.min(AgentMessage.created_at)
        rows = self.session.execute(
            self._installation_scope(
                select(
                    AgentMessage.correlation_id,
                    func.min(AgentMessage.repo),
                    func.count(),
                    sum_if(AgentMessage.kind == "escalate"),
                    sum_if(AgentMessage.kind == "result"),
                    sum_if(InboxRecord.status == "dead"),
                )
                .outerjoin(InboxRecord, InboxRecord.delivery_id == AgentMessage.delivery_id)
                .where(on_day)
                .group_by(AgentMessage.correlation_id)
                .order_by(started, AgentMessage.correlation_id),
                AgentMessage.installation_id,
            )
        ).all()
        day = ConversationsDay(messages=sum(int(row[2]) for row in rows), total=len(rows))
        listed = rows[:CONVERSATION_ROWS]
        if not listed:
            return day
        participants = self._participants([row[0] for row in listed])
        for correlation, repo, count, escalated, answered, dead in listed:
            outcome = "escalated" if escalated else "answered" if answered else "open"
            day.listed.append(
                Conversation(
                    correlation_id=correlation,
                    repo=repo,
                    messages=int(count),
                    participants=participants.get(correlation, []),
                    outcome=outcome,
                    undelivered=int(dead),
                )
            )
        return day

    def _participants(self, correlations: list[str]) -> dict[str, list[str]]:
        """Each conversation's senders and addressees, in the order they first spoke or were spoken to."""
        first = func.min(AgentMessage.id)
        rows = self.session.execute(
            self._installation_scope(
                select(AgentMessage.correlation_id, AgentMessage.sender, AgentMessage.addressee)
                .where(AgentMessage.correlation_id.in_(correlations), self._on_day(AgentMessage.created_at))
                .group_by(AgentMessage.correlation_id, AgentMessage.sender, AgentMessage.addressee)
                .order_by(first),
                AgentMessage.installation_id,
            )
        )
        found: dict[str, list[str]] = {}
        for correlation, sender, addressee in rows:
            names = found.setdefault(correlation, [])
            names += [name for name in (sender, addressee) if name not in names]
        return found
