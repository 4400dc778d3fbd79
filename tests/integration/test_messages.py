"""Agent messages on the local bus, on both stores: recorded once with lineage, delivered to the addressee
alone, exactly once in effect, never across repositories; a handoff's record claimable through the API."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from agents.base import WowAgent
from agents.catalog import default_registry
from agents.context.models import ContextVersion, Handoff
from agents.messages import Received
from agents.outputs import Comment, Message
from agents.store.tables import AgentMessage, AgentRun, InboxRecord
from bot import messages as messenger_module
from bot.bus import LocalBus
from bot.inbox import Inbox, InboxStatus
from bot.publish import DryRunPublisher
from bot.webhooks import parse_delivery
from bot.worker import Worker
from tests.conftest import ROOT, load_payload
from tests.context_api_support import api_app, bearer, issue
from tests.helpers import body_of, drain, make_platform, make_settings

REPO = "Codertocat/Hello-World"  # issue_comment/created.with-installation.payload.json, installation 1


class Sender(WowAgent):
    """Hands a draft to the receiver, keeping a count of its runs in its context."""

    name = "sender"
    wakes_on = ("issue_comment.created",)

    async def execute(self, event):
        self.context["runs"] = self.context.get("runs", 0) + 1
        return [
            Message("handoff", "receiver", {"deliverable": "the draft", "open_questions": ["is it right?"]}),
            Message("inform", "support:triage", "a draft went to the receiver", key="told-support"),
        ]


class Receiver(WowAgent):
    name = "receiver"
    wakes_on = ("agent_message.handoff",)

    async def execute(self, event):
        received = Received.of(event)
        assert received is not None
        self.context["got"] = self.context.get("got", 0) + 1
        return [
            Comment(repo=event.repo, issue_number=event.issue_number, body=f"got {received.body}", key="got"),
            Message("result", received.sender, {"accepted": True}),
        ]


class Triage(WowAgent):
    """Answers to a role of the support CoE, not to its name."""

    name = "triage-bot"
    roles = ("support:triage",)
    wakes_on = ("agent_message.inform",)

    async def execute(self, event):
        return []


class Eavesdropper(WowAgent):
    """Would wake on every message if the edge let it."""

    name = "eavesdropper"
    wakes_on = ("agent_message.*",)

    def should_wake(self, event):
        return event.name == "agent_message"

    async def execute(self, event):
        return []


class Wanderer(WowAgent):
    name = "wanderer"
    wakes_on = ("issue_comment.created",)

    async def execute(self, event):
        return [Message("request", "receiver", "look there", repo="acme/elsewhere")]


class PingPong(WowAgent):
    """Answers every message with another: only the hop limit ends it."""

    name = "ping"
    wakes_on = ("issue_comment.created", "agent_message.request")

    async def execute(self, event):
        return [Message("request", "ping", "again")]


def platform_with(store, *agents):
    output = io.StringIO()
    platform = make_platform(
        store,
        settings=make_settings(),
        bus=LocalBus(backoff_base=0.01, max_deliveries=3),
        publisher=DryRunPublisher(output),
    )
    platform.registry = default_registry(store)
    for agent in agents:
        platform.registry.register(agent)
    platform.output = output
    return platform


def enqueue(platform, delivery_id: str, payload_file="issue_comment/created.with-installation.payload.json") -> None:
    payload = load_payload(payload_file, comment__body="please draft it")
    delivery = parse_delivery(body_of(payload), event="issue_comment", delivery_id=delivery_id)
    assert Inbox(platform.store).record(delivery, InboxStatus.QUEUED)


def messages(store):
    with store.session() as session:
        return list(session.scalars(select(AgentMessage).order_by(AgentMessage.id)))


def ok_runs(store, agent):
    with store.session() as session:
        return session.scalars(
            select(AgentRun.delivery_id).where(AgentRun.agent == agent, AgentRun.status == "ok")
        ).all()


def inbox(store, delivery_id):
    with store.session() as session:
        return session.get(InboxRecord, delivery_id)


def test_a_handoff_is_recorded_once_with_lineage_and_wakes_its_addressee_alone(store):
    platform = platform_with(store, Sender, Receiver, Triage, Eavesdropper)
    enqueue(platform, "d-start")
    asyncio.run(drain(platform))

    handoff, inform, result = messages(store)
    assert (handoff.kind, handoff.sender, handoff.addressee) == ("handoff", "sender", "receiver")
    assert (inform.kind, inform.addressee) == ("inform", "support:triage")
    assert (result.kind, result.sender, result.addressee) == ("result", "receiver", "sender")
    # Lineage: the comment caused the handoff and the inform; the handoff's delivery caused the result.
    assert handoff.causation == inform.causation == "d-start"
    assert result.causation == handoff.delivery_id
    assert {m.installation_id for m in (handoff, inform, result)} == {1}
    assert {m.repo for m in (handoff, inform, result)} == {REPO}
    # One conversation, carried from the message answered to its answer.
    assert handoff.correlation_id == inform.correlation_id == result.correlation_id
    uuid.UUID(handoff.correlation_id)
    assert (handoff.hops, result.hops) == (1, 2)

    # Each message wakes its addressee once, by name or by role; nobody else, whatever should_wake says.
    assert ok_runs(store, "receiver") == [handoff.delivery_id]
    assert ok_runs(store, "triage-bot") == [inform.delivery_id]
    assert ok_runs(store, "eavesdropper") == []
    assert ok_runs(store, "sender") == ["d-start"]  # the result woke nobody: sender does not wake on results
    for message in (handoff, inform, result):
        row = inbox(store, message.delivery_id)
        assert (row.event, row.action, row.status) == ("agent_message", message.kind, "done")
        assert (row.repo, row.installation_id) == (REPO, 1)
    assert platform.output.getvalue().count("waooaw:receiver:comment:got") == 1
    # The message carried the issue its conversation is about: the receiver's comment went there.
    assert "comment on Codertocat/Hello-World#1" in platform.output.getvalue()

    # The handoff's record, with the sender's context as its run left it.
    with store.session() as session:
        record = session.get(Handoff, handoff.handoff_id)
        version = session.get(ContextVersion, record.context_version_id)
    assert (record.from_agent, record.to_agent, record.repo, record.installation_id) == (
        "sender",
        "receiver",
        REPO,
        1,
    )
    assert record.package["deliverable"] == "the draft"
    assert record.package["open_questions"] == ["is it right?"]
    assert record.package["provenance"]["message"] == handoff.id
    assert (version.agent, version.data) == ("sender", {"runs": 1})
    assert inform.handoff_id is None


def test_a_rerun_of_the_sending_run_sends_nothing_twice(store):
    """The sender's run dies after its messages are committed, before it is recorded as done (what a
    SIGKILL there leaves): the delivery comes back, the sender runs again, and its messages are not
    sent again, so the receiver wakes once."""
    finished: list[str] = []

    class DiesOnce(Worker):
        def _finish_run(self, run, delivery_id, attempt, outcome):
            with self.store.session() as session:
                agent = session.get(AgentRun, run.run_id).agent
            if agent == "sender" and not finished:
                finished.append(agent)
                raise RuntimeError("the worker died here")
            super()._finish_run(run, delivery_id, attempt, outcome)

    platform = platform_with(store, Sender, Receiver)
    platform.worker = lambda: DiesOnce(
        settings=platform.settings,
        store=platform.store,
        registry=platform.registry,
        bus=platform.bus,
        publisher=platform.publisher,
    )
    enqueue(platform, "d-again")
    asyncio.run(drain(platform))

    with store.session() as session:
        sender_runs = session.scalars(
            select(AgentRun.status).where(AgentRun.agent == "sender").order_by(AgentRun.id)
        ).all()
    assert sender_runs == ["abandoned", "ok"]  # it did run twice
    assert [m.kind for m in messages(store)] == ["handoff", "inform", "result"]
    assert len(ok_runs(store, "receiver")) == 1
    with store.session() as session:
        assert len(session.scalars(select(Handoff)).all()) == 1
    assert platform.output.getvalue().count("waooaw:receiver:comment:got") == 1


def test_a_message_to_another_repository_is_refused_and_nothing_is_sent(store):
    platform = platform_with(store, Wanderer, Receiver)
    enqueue(platform, "d-wander")
    asyncio.run(drain(platform))
    assert messages(store) == []
    assert ok_runs(store, "receiver") == []
    row = inbox(store, "d-wander")
    assert row.status == "dead" and "acme/elsewhere" in row.error


def test_a_message_needs_an_installation_and_a_repository(store):
    """Without an installation there is no tenant for it to belong to: refused, never sent."""
    platform = platform_with(store, Sender, Receiver)
    enqueue(platform, "d-nowhere", "issue_comment/created.payload.json")
    asyncio.run(drain(platform))
    assert messages(store) == []
    assert "names no installation" in inbox(store, "d-nowhere").error


def test_messages_never_wake_agents_of_another_installation_or_repository(store):
    """A message's delivery carries its sender's installation and repository; the inbox's columns
    and the event agree, and a message event whose payload was made to say otherwise runs nobody."""
    platform = platform_with(store, Sender, Receiver)
    enqueue(platform, "d-tenant")
    asyncio.run(drain(platform))
    handoff = messages(store)[0]
    row = inbox(store, handoff.delivery_id)
    assert (row.installation_id, row.repo) == (1, REPO)

    # The same message made to name another installation than its row: nobody is woken.
    import json

    forged = json.loads(row.body)
    forged["installation"]["id"] = 2
    with store.session() as session:
        session.add(
            InboxRecord(
                delivery_id="msg-forged",
                event="agent_message",
                action="handoff",
                repo=REPO,
                installation_id=1,
                body=json.dumps(forged).encode(),
                status="queued",
            )
        )
    asyncio.run(drain(platform_with(store, Sender, Receiver)))
    assert "msg-forged" not in ok_runs(store, "receiver")
    assert inbox(store, "msg-forged").status == "done"


def test_a_webhook_named_agent_message_is_not_taken_for_one(store):
    platform = platform_with(store, Receiver)
    assert asyncio.run(platform.wanted("issue_comment", "created")) is True
    assert asyncio.run(platform.wanted("agent_message", "handoff")) is False


def test_a_conversation_that_never_ends_is_cut_at_the_hop_limit(store, monkeypatch):
    monkeypatch.setattr(messenger_module, "MAX_HOPS", 3)
    platform = platform_with(store, PingPong)
    enqueue(platform, "d-ping")
    asyncio.run(drain(platform))
    sent = messages(store)
    assert [m.hops for m in sent] == [1, 2, 3]
    last = inbox(store, sent[-1].delivery_id)
    assert last.status == "dead" and "chain of 3 messages" in last.error


def test_the_addressee_claims_the_handoff_through_the_api_once(store):
    platform = platform_with(store, Sender, Receiver)
    enqueue(platform, "d-claim")
    asyncio.run(drain(platform))
    handoff = messages(store)[0]
    token = issue(store, installation_id=1)
    with TestClient(api_app(store)) as client:
        listed = client.get("/api/v1/handoffs", params={"to_agent": "receiver"}, headers=bearer(token))
        assert listed.status_code == 200
        assert [item["id"] for item in listed.json()["items"]] == [handoff.handoff_id]
        first = client.post(f"/api/v1/handoffs/{handoff.handoff_id}/claim", headers=bearer(token))
        again = client.post(f"/api/v1/handoffs/{handoff.handoff_id}/claim", headers=bearer(token))
        other = issue(store, installation_id=2)
        foreign = client.get(f"/api/v1/handoffs/{handoff.handoff_id}", headers=bearer(other))
    assert first.status_code == 200 and first.json()["package"]["deliverable"] == "the draft"
    assert again.status_code == 409
    assert foreign.status_code == 404


@pytest.mark.parametrize(
    ("kind", "to", "problem"),
    [("shout", "receiver", "kind"), ("inform", "Receiver", "to"), ("inform", "support:", "to")],
)
def test_a_message_off_the_protocol_cannot_be_built(kind, to, problem):
    with pytest.raises(ValueError, match=problem):
        Message(kind, to, "hello")


def test_messages_list_filters_by_conversation_and_repository(store, tmp_path):
    platform = platform_with(store, Sender, Receiver)
    enqueue(platform, "d-here")
    other = load_payload("issue_comment/created.with-installation.payload.json", comment__body="and here")
    other["repository"]["full_name"] = "Codertocat/Other"
    delivery = parse_delivery(body_of(other), event="issue_comment", delivery_id="d-there")
    assert Inbox(store).record(delivery, InboxStatus.QUEUED)
    asyncio.run(drain(platform))
    here = {m.correlation_id for m in messages(store) if m.repo == REPO}
    there = {m.correlation_id for m in messages(store) if m.repo == "Codertocat/Other"}
    assert len(here) == len(there) == 1 and here != there

    def listed(*options: str) -> list[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "WAOOAW_"))}
        result = subprocess.run(
            [sys.executable, "-m", "bot.cli", "messages", "list", *options],
            env={**env, "WAOOAW_DATABASE_URL": store.url, "PYTHONPATH": str(ROOT)},
            cwd=tmp_path,  # no developer's .env
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.splitlines()

    everything = listed()
    assert everything[0].split() == ["time", "(UTC)", "kind", "from", "→", "to", "correlation", "state", "body"]
    assert len(everything) == 2 + 6  # header, rule, three messages in each conversation

    (correlation,) = there
    conversation = listed("--correlation", correlation)
    assert len(conversation) == 2 + 3
    assert all(correlation in line for line in conversation[2:])
    assert [line.split()[2:6] for line in conversation[2:]] == [
        ["handoff", "sender", "→", "receiver"],
        ["inform", "sender", "→", "support:triage"],
        ["result", "receiver", "→", "sender"],
    ]
    assert "handled" in conversation[2] and '{"deliverable":"the draft"' in conversation[2]
    assert "unheard" in conversation[3]  # nobody answers to support:triage here

    by_repo = listed("--repo", REPO)
    assert len(by_repo) == 2 + 3 and not any(correlation in line for line in by_repo)


def test_the_daily_report_shows_conversations_with_their_participants_and_outcome(store):
    from datetime import UTC, datetime

    from agents.reports import build_daily_report, render_markdown

    platform = platform_with(store, Sender, Receiver)
    enqueue(platform, "d-report")
    asyncio.run(drain(platform))
    (correlation,) = {m.correlation_id for m in messages(store)}

    report = build_daily_report(store, datetime.now(UTC).date(), "UTC")
    assert report.conversations.messages == 3 and report.conversations.total == 1
    (conversation,) = report.conversations.listed
    assert conversation.correlation_id == correlation and conversation.repo == REPO
    assert conversation.messages == 3
    assert conversation.participants == ["sender", "receiver", "support:triage"]
    assert conversation.outcome == "answered"  # the receiver's result came back
    assert conversation.undelivered == 0
    markdown = render_markdown(report)
    assert "## Conversations between agents" in markdown
    row = f"| `{correlation}` | Codertocat/Hello-World | 3 | sender · receiver · support:triage | answered |"
    assert row in markdown
    # Another installation's report does not see them.
    assert build_daily_report(store, datetime.now(UTC).date(), "UTC", installation_id=2).conversations.total == 0
