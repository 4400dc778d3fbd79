"""CoE coordinators on the real stores: one Responsible per task however many coordinators race for it,
the choice by reputation then load among the agents hired and active, and a task past its deadline
escalated once, as an `escalate` message and an issue labelled `needs-human`."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from agents import hires
from agents.base import AgentEnv, WowAgent
from agents.catalog import default_registry
from agents.coordination import assignments
from agents.events import Event
from agents.hires import Lifecycle
from agents.outputs import Message
from agents.reputation.outcomes import Outcome, record
from agents.store.tables import AgentMessage, TaskAssignment
from bot.coordination import escalate_overdue
from bot.messages import Messenger
from tests.conftest import load_payload
from tests.helpers import drain
from tests.integration.test_messages import enqueue, platform_with

REPO = "Codertocat/Hello-World"
DEADLINE = datetime(2030, 1, 1, tzinfo=UTC)
PAST = datetime(2020, 1, 1, tzinfo=UTC)


def hire(store, *names, repo=REPO, installation=1):
    with store.session() as session:
        hires.apply_config(session, installation, repo, enable=names, disable=(), budgets={})


def labeled(delivery: str, number: int, repo: str = REPO) -> Event:
    payload = load_payload("issues/labeled.payload.json", label__name="coe:support", issue__number=number)
    payload["installation"] = {"id": 1}
    payload["repository"]["full_name"] = repo
    return Event.from_payload(delivery, "issues", payload)


def coordinator(store, registry=None):
    registry = registry or default_registry(store)
    return registry.get("support-coordinator")(AgentEnv(store=store, registry=registry))


def test_two_coordinators_racing_on_one_task_assign_it_once(pg_store):
    """Two workers' coordinators, each woken by its own delivery about the same issue (the label and
    the command, say), route it at the same moment: one assigns, the other sends nothing."""
    hire(pg_store, "tech-support", "customer-success")
    registry = default_registry(pg_store)
    for number in range(1, 21):
        barrier = threading.Barrier(2)
        sent: dict[str, list] = {}

        def route(delivery: str, number: int = number, barrier: threading.Barrier = barrier, sent: dict = sent) -> None:
            event = labeled(delivery, number)
            agent = coordinator(pg_store, registry)
            barrier.wait()
            sent[delivery] = agent.route(event, "question", f"c-{delivery}", DEADLINE, None)

        threads = [threading.Thread(target=route, args=(f"d{number}-{side}",)) for side in ("a", "b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(sent) == [f"d{number}-a", f"d{number}-b"]  # both routed, neither failed
        winners = [delivery for delivery, outputs in sent.items() if outputs]
        assert len(winners) == 1, (number, sent)
        (handoff,) = [m for m in sent[winners[0]] if m.kind == "handoff"]
        with pg_store.session() as session:
            rows = session.scalars(select(TaskAssignment).where(TaskAssignment.issue_number == number)).all()
        assert [(r.task_key, r.delivery_id, r.responsible) for r in rows] == [
            (f"question:#{number}", winners[0], handoff.to)
        ]
        assert handoff.correlation_id == f"c-{winners[0]}"

    # The winner's run done again (a retry after a crash) assigns again: the same messages, by key.
    again = coordinator(pg_store, registry).route(labeled(winners[0], 20), "question", "c-other", DEADLINE, None)
    assert [m.key for m in again] == [m.key for m in sent[winners[0]]]


def test_routing_prefers_the_better_reputation_then_the_lower_load(store):
    agent = coordinator(store)
    question = agent.raci.tasks["question"]  # responsible: tech-support, customer-success
    assert question.responsible == ["tech-support", "customer-success"]

    def pick(repo):
        return agent.pick(1, repo, question.responsible)

    # Nobody hired: nobody to pick. Hired: equal (no outcomes, no load) → by name.
    assert pick("o/plain") is None
    hire(store, "tech-support", "customer-success", repo="o/plain")
    assert pick("o/plain") == "customer-success"

    # Reputation first: tech-support's merged pull requests win over customer-success's empty load.
    hire(store, "tech-support", "customer-success", repo="o/rep")
    with store.session() as session:
        record(session, [Outcome(1, "o/rep", "tech-support", "pr_merged", f"pr-{n}") for n in range(6)])
        record(session, [Outcome(1, "o/rep", "customer-success", "pr_closed", "pr-9")])
        for n in range(5):  # and tech-support already has five open tasks
            task = assignments.Task(1, "o/rep", "support", f"question:#{n}", "question", f"c{n}", f"d{n}", n)
            assignments.claim(session, task, "tech-support", "customer-success")
    assert pick("o/rep") == "tech-support"

    # Equal reputation: the lower load wins.
    hire(store, "tech-support", "customer-success", repo="o/load")
    with store.session() as session:
        for n in range(2):
            task = assignments.Task(1, "o/load", "support", f"question:#{n}", "question", f"c{n}", f"d{n}", n)
            assignments.claim(session, task, "customer-success", "customer-success")
        done = assignments.Task(1, "o/load", "support", "follow-up:#9", "follow-up", "c9", "d9", 9)
        finished = assignments.claim(session, done, "tech-support", "customer-success")
        assert assignments.advance(session, finished.id, "done")  # a finished task is no load
    assert pick("o/load") == "tech-support"

    # Only the hired and active count, whatever their reputation.
    with store.session() as session:
        hires.set_state(session, 1, "o/rep", "tech-support", Lifecycle.PAUSED)
    assert pick("o/rep") == "customer-success"


class Asker(WowAgent):
    """Asks the support CoE's `question` role for an answer due by a time already past."""

    name = "asker"
    wakes_on = ("issue_comment.created",)

    async def execute(self, event):
        due = datetime.now(UTC) - timedelta(minutes=5)
        return [Message("request", "support:question", {"question": "how do I run it?"}, deadline=due)]


def test_a_message_past_its_deadline_escalates_once(store):
    platform = platform_with(store, Asker)
    hire(store, "tech-support", "customer-success")
    enqueue(platform, "d-ask")

    async def ask_then_sweep_twice() -> list[int]:  # one event loop: the local bus lives in it
        await drain(platform)
        messenger = Messenger(store, platform.bus)
        counts = [await escalate_overdue(store, messenger), await escalate_overdue(store, messenger)]
        await drain(platform)
        return counts

    assert asyncio.run(ask_then_sweep_twice()) == [1, 0]  # escalated once

    with store.session() as session:
        (task,) = session.scalars(select(TaskAssignment)).all()
        sent = session.scalars(
            select(AgentMessage).where(AgentMessage.kind != "escalate").order_by(AgentMessage.id)
        ).all()
    assert (task.coe, task.kind, task.task_key, task.state) == ("support", "question", "question:#1", "assigned")
    request = sent[0]
    assert (request.sender, request.addressee) == ("asker", "support:question")
    routed = {(m.kind, m.sender, m.addressee) for m in sent[1:]}
    assert routed == {
        ("handoff", "support-coordinator", task.responsible),
        ("request", "support-coordinator", "customer-success"),
    }
    assert {m.correlation_id for m in sent} == {request.correlation_id} == {task.correlation_id}
    assert all(m.deadline is not None for m in sent)

    with store.session() as session:
        escalations = session.scalars(select(AgentMessage).where(AgentMessage.kind == "escalate")).all()
        task = session.get(TaskAssignment, task.id)
    assert [(m.sender, m.addressee, m.correlation_id) for m in escalations] == [
        ("support-coordinator", "support:coordinator", request.correlation_id)
    ]
    assert task.escalated_at is not None
    printed = platform.output.getvalue()
    assert printed.count("Needs a person: support task question is not done") == 1
    assert "needs-human" in printed


def test_a_task_before_its_deadline_or_done_is_not_escalated(store):
    with store.session() as session:
        late = assignments.claim(
            session,
            assignments.Task(1, REPO, "support", "question:#1", "question", "c1", "d1", 1, DEADLINE),
            "tech-support",
            "customer-success",
        )
        done = assignments.claim(
            session,
            assignments.Task(1, REPO, "support", "question:#2", "question", "c2", "d2", 2, PAST),
            "tech-support",
            "customer-success",
        )
        assignments.advance(session, done.id, "done")
    with store.reading() as session:
        assert assignments.overdue(session, datetime.now(UTC)) == []
        assert [row.id for row in assignments.overdue(session, DEADLINE + timedelta(seconds=1))] == [late.id]
