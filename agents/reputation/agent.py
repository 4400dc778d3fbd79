"""The Outcome Clerk: notes what people do with agents' outputs, as outcomes (agents/reputation/outcomes.py).

It wakes on what a person does to something an agent published — resolves the thread of
its review, merges or closes its pull request, changes or keeps the labels of its issue —
finds the agent through the record of published outputs, and records the outcome once.
It publishes nothing and keeps no context: its record is `agent_outcomes`. What our own
App does is no verdict on it, so it never wakes on that. WowVision records its own
findings fixed and rules ignored (it is the one that knows); reactions, which GitHub
sends no webhook for, are read in batch (agents/reputation/reactions.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from sqlalchemy.orm import Session

from agents.base import WowAgent
from agents.events import Event
from agents.outputs import IssueReport, Labels, Output, PullRequest, Review
from agents.reputation.outcomes import Outcome, producer, record, recorded
from agents.vision.outcomes import inline_rule

log = structlog.get_logger(__name__)


class OutcomeClerk(WowAgent):
    name = "outcome-clerk"
    description = "Records how agents' outputs fare (threads resolved, pull requests merged, triage kept) as evidence"
    wakes_on = (
        "pull_request.closed",
        "pull_request_review_thread.resolved",
        "pull_request_review_thread.unresolved",
        "issues.labeled",
        "issues.unlabeled",
        "issues.closed",
    )

    def should_wake(self, event: Event) -> bool:
        sender = event.payload.get("sender") or {}
        return super().should_wake(event) and not event.caused_by_app and sender.get("type") == "User"

    async def wake_up(self, event: Event) -> None:
        """No context to load."""

    async def execute(self, event: Event) -> list[Output]:
        if event.repo is not None:
            new = await asyncio.to_thread(self._observe, event)
            log.info("outcome_clerk.recorded", kind=event.kind, new=new)
        return []

    def _observe(self, event: Event) -> int:
        with self.env.store.session() as session:
            return record(session, _outcomes(session, event))


def _outcomes(session: Session, event: Event) -> list[Outcome]:
    if event.name == "pull_request":
        return _pull_closed(session, event)
    if event.name == "pull_request_review_thread":
        return _thread(session, event)
    return _issue(session, event)


def _outcome(event: Event, agent: str, kind: str, subject: str, **values: Any) -> Outcome:
    assert event.repo is not None
    return Outcome(event.installation_id, event.repo, agent, kind, subject, delivery_id=event.delivery_id, **values)


def _pull_closed(session: Session, event: Event) -> list[Outcome]:
    pull = event.payload.get("pull_request") or {}
    number = pull.get("number")
    if not isinstance(number, int):
        return []
    agent = producer(session, event.installation_id, event.repo or "", (PullRequest.kind,), number)
    if agent is None:
        return []
    merged = bool(pull.get("merged"))
    return [
        _outcome(
            event,
            agent,
            "pr_merged" if merged else "pr_closed",
            f"pr-{number}",
            url=pull.get("html_url"),
            github_id=number,
            evidence={"title": pull.get("title"), "by": event.sender_login},
        )
    ]


def _thread(session: Session, event: Event) -> list[Outcome]:
    """A thread is the review comment that starts it and the replies to it: ours when our review started it."""
    comments = (event.payload.get("thread") or {}).get("comments") or []
    first = comments[0] if comments else {}
    review_id = first.get("pull_request_review_id")
    if not isinstance(review_id, int):
        return []
    agent = producer(session, event.installation_id, event.repo or "", (Review.kind,), review_id)
    if agent is None:
        return []
    resolved = event.action == "resolved"
    return [
        _outcome(
            event,
            agent,
            "thread_resolved" if resolved else "thread_unresolved",
            f"thread-{first.get('id')}",
            rule=inline_rule(first.get("body")),
            url=first.get("html_url"),
            github_id=first.get("id"),
            evidence={
                "pull": event.issue_number,
                "path": first.get("path"),
                "line": first.get("line"),
                "replies": len(comments) - 1,
                "by": event.sender_login,
            },
        )
    ]


def _issue(session: Session, event: Event) -> list[Outcome]:
    """Labels of an issue an agent opened or labelled (its triage): a person adding or removing one changed
    it; a person closing the issue with its labels on kept it."""
    issue = event.payload.get("issue") or {}
    number = issue.get("number")
    if not isinstance(number, int):
        return []
    agent = producer(session, event.installation_id, event.repo or "", (Labels.kind, IssueReport.kind), number)
    if agent is None:
        return []
    url, repo = issue.get("html_url"), event.repo or ""
    if event.action == "closed":
        labels = sorted(label.get("name") for label in issue.get("labels") or [])
        if not labels or recorded(session, event.installation_id, repo, "triage_changed", github_id=number):
            return []
        evidence = {"labels": labels, "by": event.sender_login}
        return [_outcome(event, agent, "triage_kept", f"issue-{number}", url=url, github_id=number, evidence=evidence)]
    name = (event.payload.get("label") or {}).get("name")
    if not name:
        return []
    added = f"issue-{number}:+{name}"
    if event.action == "unlabeled" and recorded(session, event.installation_id, repo, "triage_changed", subject=added):
        return []  # a person took off a label a person put on: the agent's triage is not in it
    subject = added if event.action == "labeled" else f"issue-{number}:-{name}"
    evidence = {"label": name, "action": event.action, "by": event.sender_login}
    return [_outcome(event, agent, "triage_changed", subject, url=url, github_id=number, evidence=evidence)]
