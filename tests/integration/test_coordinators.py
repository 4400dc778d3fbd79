"""CoE coordinators on the real stores: one Responsible per task however many coordinators race for it,
the choice by reputation then load among the agents hired and active, a task past its deadline
escalated once, as an `escalate` message and an issue labelled `needs-human`, and a fix its
Accountable refuses sent back to its Responsible."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from agents import hires
from agents.base import AgentEnv, WowAgent
from agents.catalog import default_registry
from agents.coordination import assignments
from agents.coordination.coordinator import refused
from agents.events import Event
from agents.hires import Lifecycle
from agents.messages import EVENT, Received, payload
from agents.outputs import Message
from agents.reputation.outcomes import Outcome, record
from agents.store.tables import AgentMessage, TaskAssignment
from agents.vision import signoff
from bot.bus import LocalBus
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


FIX_CONVERSATION = "c-fix"
HEAD = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"


def engineering(store):
    registry = default_registry(store)
    return registry.get("engineering-coordinator")(AgentEnv(store=store, registry=registry))


def merged_fix(store, pull: int, assignment: int | None = None) -> int:
    """Engineering's bug-fix task on issue #1 with its fix `pull` merged: delivered, for WowVision to sign off."""
    with store.session() as session:
        if assignment is None:
            task = assignments.Task(1, REPO, "engineering", "bug-fix:#1", "bug-fix", FIX_CONVERSATION, "d-bug", 1)
            assignment = assignments.claim(session, task, "engineering:developer", "wowvision").id
        assert assignments.fixed(session, assignment, pull)
    return assignment


def wowvision_verdict(message_id: int, assignment: int, pull: int, *severities: str) -> Event:
    """WowVision's answer to the sign-off request of the merged `pull`, reviewed with findings of
    `severities`, as the edge delivers it to the coordinator."""
    asked = {"task": "bug-fix", "assignment": assignment, "pull_request": pull, "head_sha": HEAD, "sign_off": True}
    request = Received(
        message_id - 1, "request", "engineering-coordinator", "wowvision", asked, FIX_CONVERSATION, "d-merged", 2
    )
    findings = {f"fp{i}": {"rule": f"r{i}", "severity": s} for i, s in enumerate(severities)}
    (answer,) = signoff.verdict(request, {"head_sha": HEAD, "findings": findings})
    assert isinstance(answer, Message)
    message = {
        "id": message_id,
        "kind": "result",
        "from": "wowvision",
        "to": answer.to,
        "body": answer.body,
        "correlation_id": FIX_CONVERSATION,
        "causation": f"msg-{message_id - 1}",
        "hops": 3,
    }
    carried = payload(message=message, installation_id=1, repo=REPO, private=False, issue_number=1)
    return Event.from_payload(f"msg-{message_id}", EVENT, carried)


def task_row(store, assignment: int) -> TaskAssignment:
    with store.reading() as session:
        row = session.get(TaskAssignment, assignment)
        assert row is not None
        return row


def test_a_failing_sign_off_sends_the_fix_back_to_its_responsible_until_one_passes(store):
    agent = engineering(store)
    assignment = merged_fix(store, pull=2)
    before = task_row(store, assignment)

    refusal = wowvision_verdict(11, assignment, 2, "error", "warning")
    (rework,) = asyncio.run(agent.execute(refusal))
    verdict = refusal.payload["message"]["body"]
    assert verdict["conclusion"] == "failure"
    assert rework == Message(
        "request",
        "engineering:developer",
        {"task": "bug-fix", "assignment": assignment, "rework": True, "verdict": verdict},
        FIX_CONVERSATION,
        key=f"rework:{assignment}:11",
    )
    after = task_row(store, assignment)
    assert (after.state, after.deadline, after.escalated_at) == ("assigned", before.deadline, None)

    # A second fix, merged and clean: WowVision's passing verdict closes the task.
    merged_fix(store, pull=3, assignment=assignment)
    assert asyncio.run(agent.execute(wowvision_verdict(13, assignment, 3, "warning"))) == []
    assert task_row(store, assignment).state == "done"

    # Done is final: a late refusal changes nothing and sends nothing.
    assert asyncio.run(agent.execute(wowvision_verdict(15, assignment, 2, "error"))) == []
    assert task_row(store, assignment).state == "done"


def test_a_retried_refusal_asks_for_rework_once_and_a_later_refusal_again(store):
    agent = engineering(store)
    assignment = merged_fix(store, pull=2)

    async def run(event: Event) -> None:  # the coordinator's run and the edge recording its messages
        messages = [output for output in await agent.execute(event) if isinstance(output, Message)]
        await Messenger(store, LocalBus()).send(agent.name, messages, event, None)

    def reworks() -> list[int]:
        with store.reading() as session:
            sent = session.scalars(
                select(AgentMessage).where(AgentMessage.addressee == "engineering:developer").order_by(AgentMessage.id)
            ).all()
        assert all((m.kind, m.correlation_id, m.body["rework"]) == ("request", FIX_CONVERSATION, True) for m in sent)
        return [m.body["verdict"]["pull_request"] for m in sent]

    refusal = wowvision_verdict(11, assignment, 2, "error")
    asyncio.run(run(refusal))
    asyncio.run(run(refusal))  # the same delivery again: a retry after the run crashed
    assert reworks() == [2]

    merged_fix(store, pull=3, assignment=assignment)
    asyncio.run(run(wowvision_verdict(21, assignment, 3, "error")))
    assert reworks() == [2, 3]
    assert task_row(store, assignment).state == "assigned"


def test_an_accountable_refuses_with_a_failure_or_approved_false():
    assert refused({"conclusion": "failure", "findings": {"error": 1}})
    assert refused({"approved": False, "reason": "the tone is off"})
    assert not refused({"conclusion": "success"})
    assert not refused({"approved": True})
    assert not refused({"approved": None})
    assert not refused({"accepted": True})
    assert not refused("failure")
    assert not refused(None)
