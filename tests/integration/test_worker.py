"""The worker on the local bus: routing, isolation, timeouts, lifecycle, loops, recovery."""

from __future__ import annotations

import asyncio
import io

import pytest
from sqlalchemy import select

from agents.base import HandoffPackage, WowAgent
from agents.catalog import default_registry
from agents.context import repository
from agents.context.models import ContextVersion, Handoff
from agents.events import Event
from agents.outputs import Comment
from agents.registry import Lifecycle
from agents.store.tables import AgentRun, InboxRecord
from bot.bus import LocalBus
from bot.inbox import Inbox, InboxStatus
from bot.publish import DryRunPublisher
from bot.webhooks import parse_delivery
from tests.conftest import load_payload
from tests.helpers import body_of, drain, make_platform, make_settings


class Counter(WowAgent):
    """Counts the comments it sees in its context; answers with one comment."""

    name = "counter"
    wakes_on = ("issue_comment.created",)

    async def execute(self, event):
        self.context["seen"] = self.context.get("seen", 0) + 1
        return [
            Comment(repo=event.repo, issue_number=event.issue_number, body=f"seen {self.context['seen']}", key="count")
        ]


class Echo(WowAgent):
    """Answers every comment; keeps no context, so concurrent runs never conflict."""

    name = "echo"
    wakes_on = ("issue_comment.created",)

    async def execute(self, event):
        return [Comment(repo=event.repo, issue_number=event.issue_number, body="echo", key=event.delivery_id)]


class Wanderer(WowAgent):
    """Answers the comment, and also on another repository of the installation."""

    name = "wanderer"
    wakes_on = ("issue_comment.created",)

    async def execute(self, event):
        return [
            Comment(repo=event.repo, issue_number=event.issue_number, body="here", key="here"),
            Comment(repo="acme/elsewhere", issue_number=1, body="there", key="there"),
        ]


class Crasher(WowAgent):
    name = "crasher"
    wakes_on = ("issue_comment.created",)

    async def execute(self, event):
        raise RuntimeError("boom")


class Sleeper(WowAgent):
    name = "sleeper"
    wakes_on = ("issue_comment.created",)

    async def execute(self, event):
        await asyncio.Event().wait()  # never returns: only the timeout ends it
        return []


class Handing(WowAgent):
    name = "handing"
    wakes_on = ("issue_comment.created",)

    async def execute(self, event):
        self.context["draft"] = "v1"
        await self.handoff_to("counter", HandoffPackage("the draft", ["is it right?"], {"by": self.name}), event)
        return []


def platform_with(store, *agents, **settings):
    output = io.StringIO()
    platform = make_platform(
        store,
        settings=make_settings(**settings),
        bus=LocalBus(backoff_base=0.01, max_deliveries=3),
        publisher=DryRunPublisher(output),
    )
    platform.registry = default_registry(store)
    for agent in agents:
        platform.registry.register(agent)
    platform.output = output
    return platform


def enqueue(platform, delivery_id: str, text: str = "hello", **overrides) -> None:
    payload = load_payload("issue_comment/created.with-installation.payload.json", comment__body=text, **overrides)
    delivery = parse_delivery(body_of(payload), event="issue_comment", delivery_id=delivery_id)
    assert Inbox(platform.store).record(delivery, InboxStatus.QUEUED)


def runs(store, delivery_id):
    with store.session() as session:
        return [
            (r.agent, r.status)
            for r in session.scalars(select(AgentRun).where(AgentRun.delivery_id == delivery_id).order_by(AgentRun.id))
        ]


def inbox_status(store, delivery_id):
    with store.session() as session:
        return session.get(InboxRecord, delivery_id).status


def test_concierge_answers_status_and_the_run_is_recorded(store):
    platform = platform_with(store)
    enqueue(platform, "d1", "/waooaw status")
    asyncio.run(drain(platform))
    printed = platform.output.getvalue()
    assert "<!-- waooaw:concierge:reaction:" in printed and "eyes" in printed
    assert "<!-- waooaw:concierge:comment:status:" in printed and "waiting or in flight" in printed
    assert runs(store, "d1") == [("concierge", "ok")]
    with store.session() as session:
        run = session.scalars(select(AgentRun)).one()
    assert run.finished_at is not None and run.duration_ms is not None and run.duration_ms >= 0
    assert inbox_status(store, "d1") == "done"


def test_status_shows_only_its_own_installations_events_and_ignored_rules(store):
    """The same repository name under another installation is another tenant: none of its events
    or WowVision suppressions appear in this one's `/waooaw status`."""
    platform = platform_with(store)
    mine, theirs = 1, 777  # the payload's installation, and another holding the same name
    repo = "Codertocat/Hello-World"
    for installation, event in ((mine, "star"), (theirs, "fork")):
        payload = load_payload(f"{event}/{'created.payload.json' if event == 'star' else 'payload.json'}")
        payload.update(installation={"id": installation}, repository={**payload["repository"], "full_name": repo})
        delivery = parse_delivery(body_of(payload), event=event, delivery_id=f"{event}-{installation}")
        assert Inbox(store).record(delivery, InboxStatus.DONE)
    with store.session() as session:
        for installation, rule in ((mine, "mine-rule"), (theirs, "their-rule")):
            ignored = {rule: {"by": "octocat", "reason": "known", "at": "2026-12-05T00:00:00"}}
            session.add(
                ContextVersion(
                    installation_id=installation,
                    repo=repo,
                    agent="wowvision",
                    scope="repo",
                    version=1,
                    data={"suppressions": ignored},
                )
            )
    enqueue(platform, "d-status", "/waooaw status")
    asyncio.run(drain(platform))
    printed = platform.output.getvalue()
    assert "`star.created`" in printed and "`mine-rule`" in printed
    assert "`fork`" not in printed and "their-rule" not in printed


def test_a_crashing_agent_never_blocks_another_and_ends_in_the_dead_letters(store):
    platform = platform_with(store, Counter, Crasher)
    enqueue(platform, "d2")
    asyncio.run(drain(platform))
    recorded = runs(store, "d2")
    # counter succeeded once and was not run again on the retries; crasher tried max_deliveries times
    assert recorded.count(("counter", "ok")) == 1
    assert recorded.count(("crasher", "error")) == 3
    assert inbox_status(store, "d2") == "dead"
    assert platform.output.getvalue().count("waooaw:counter:comment:count") == 1


def test_an_agent_that_hangs_is_stopped_by_its_timeout(store):
    # Long enough for Counter's run on a loaded machine; Sleeper never returns whatever it is.
    platform = platform_with(store, Sleeper, Counter, WAOOAW_AGENT_TIMEOUT=1.0)
    enqueue(platform, "d3")
    asyncio.run(drain(platform))
    assert ("sleeper", "timeout") in runs(store, "d3")
    assert ("counter", "ok") in runs(store, "d3")


def test_a_paused_agent_never_wakes(store):
    platform = platform_with(store, Counter)
    platform.registry.set_state("counter", Lifecycle.PAUSED)
    enqueue(platform, "d4")
    asyncio.run(drain(platform))
    assert runs(store, "d4") == []
    assert inbox_status(store, "d4") == "done"
    platform.registry.set_state("counter", Lifecycle.ACTIVE)
    assert "counter" in [agent.name for agent in platform.registry.active()]


def test_events_our_app_caused_do_not_wake_the_agent_that_made_them(store):
    bot_user_id = 41898282
    platform = platform_with(store, WAOOAW_AGENT_TIMEOUT=5, GITHUB_APP_BOT_USER_ID=bot_user_id)
    marker = "<!-- waooaw:concierge:comment:help:1 -->"
    enqueue(platform, "d5", f"/waooaw help\n{marker}", sender__id=bot_user_id)
    asyncio.run(drain(platform))
    assert runs(store, "d5") == []


def test_a_bot_suffix_alone_is_not_trusted_as_our_app(store):
    platform = platform_with(store, GITHUB_APP_BOT_USER_ID=41898282)
    enqueue(platform, "d6", "/waooaw help", sender__login="waooaw[bot]", sender__type="Bot")
    asyncio.run(drain(platform))
    assert runs(store, "d6") == [("concierge", "ok")]


def test_app_id_on_the_comment_marks_it_ours():
    payload = load_payload(
        "issue_comment/created.payload.json", comment__body="/waooaw help <!-- waooaw:concierge:comment:help:1 -->"
    )
    payload["comment"]["performed_via_github_app"] = {"id": 777}
    payload["sender"].update(login="waooaw[bot]", id=4242, type="Bot")  # as GitHub sends what an App wrote
    event = Event.from_payload("x", "issue_comment", payload, app_id=777)
    assert event.caused_by_app and event.origin_agent == "concierge"
    assert not Event.from_payload("x", "issue_comment", payload, app_id=778).caused_by_app


def test_a_person_acting_on_what_our_app_wrote_causes_their_own_event():
    """GitHub keeps naming our App on an issue it opened (performed_via_github_app): a person closing
    WowDomain's question issue must still wake WowDomain, as must a person editing our comment."""
    closed = load_payload("issues/reopened.payload.json", action="closed")
    closed["issue"].update(
        body="Which market?\n\n<!-- waooaw:wowdomain:issue:job-0123456789:esc-1 -->",
        performed_via_github_app={"id": 777},
    )
    assert closed["sender"]["type"] == "User"
    assert not Event.from_payload("x", "issues", closed, app_id=777).caused_by_app
    edited = load_payload(
        "issue_comment/created.payload.json",
        action="edited",
        comment__body="/waooaw help <!-- waooaw:concierge:comment:help:1 -->",
    )
    edited["comment"]["performed_via_github_app"] = {"id": 777}
    assert not Event.from_payload("x", "issue_comment", edited, app_id=777).caused_by_app
    # Our App closing it (its bot as the sender) is ours, known by the bot's id.
    closed["sender"].update(login="waooaw[bot]", id=4242, type="Bot")
    assert Event.from_payload("x", "issues", closed, app_id=777, bot_user_id=4242).caused_by_app


def test_a_payload_whose_objects_are_not_objects_names_no_repository_installation_or_sender():
    payload = load_payload("issue_comment/created.payload.json")
    payload.update(repository=["acme/widgets"], installation="1", sender=7)
    payload["comment"]["body"] = 5
    event = Event.from_payload("x", "issue_comment", payload, app_id=777, bot_user_id=7)
    assert (event.repo, event.installation_id, event.sender_login, event.caused_by_app) == (None, None, None, False)
    assert not event.repo_public and event.origin_agent is None


def test_the_origin_of_our_comment_is_the_marker_that_ends_it():
    """Our summary quoting a file named after another agent's marker was still written by WowVision."""
    body = "`docs/<!-- waooaw:concierge:comment:help:2 -->/models.py`\n\n<!-- waooaw:wowvision:comment:summary:2 -->\n"
    payload = load_payload("issue_comment/created.payload.json", comment__body=body)
    payload["comment"]["performed_via_github_app"] = {"id": 777}
    payload["sender"].update(login="waooaw[bot]", id=4242, type="Bot")
    assert Event.from_payload("x", "issue_comment", payload, app_id=777).origin_agent == "wowvision"
    payload["comment"]["body"] = "<!-- waooaw:wowvision:comment:summary:2 --> and then text"
    assert Event.from_payload("x", "issue_comment", payload, app_id=777).origin_agent is None


def test_an_agent_asking_to_act_on_another_repository_publishes_nothing_and_fails(store):
    platform = platform_with(store, Wanderer)
    enqueue(platform, "w1")
    asyncio.run(drain(platform))
    assert ("wanderer", "error") in runs(store, "w1")
    assert "waooaw:wanderer:" not in platform.output.getvalue()
    with store.session() as session:
        failed = session.scalars(select(AgentRun).where(AgentRun.agent == "wanderer")).first()
        assert "acme/elsewhere" in failed.error and "nothing was published" in failed.error


def test_context_is_versioned_with_lineage_across_wakes(store):
    platform = platform_with(store, Counter)
    for index in range(3):
        enqueue(platform, f"c{index}")
    asyncio.run(drain(platform))
    with store.session() as session:
        versions = list(
            session.scalars(
                select(ContextVersion).where(ContextVersion.agent == "counter").order_by(ContextVersion.version)
            )
        )
        assert [v.data["seen"] for v in versions] == [1, 2, 3]
        chain = repository.lineage(session, versions[-1].id)
        assert [v.version for v in chain] == [1, 2, 3]
        assert versions[0].parent_id is None and versions[1].parent_id == versions[0].id


def test_handoff_is_stored_with_its_package_and_context(store):
    platform = platform_with(store, Handing)
    enqueue(platform, "h1")
    asyncio.run(drain(platform))
    with store.session() as session:
        handoff = session.scalars(select(Handoff)).one()
        assert handoff.to_agent == "counter" and handoff.from_agent == "handing"
        assert handoff.package == {
            "deliverable": "the draft",
            "open_questions": ["is it right?"],
            "provenance": {"by": "handing"},
        }
        assert session.get(ContextVersion, handoff.context_version_id).data == {"draft": "v1"}


def test_a_restart_requeues_what_the_inbox_holds_unfinished(store):
    # Deliveries recorded (202 sent) but the process died before the worker saw them.
    first = platform_with(store, Echo)
    for index in range(5):
        enqueue(first, f"r{index}")
    enqueue(first, "already-done")
    Inbox(store).mark("already-done", InboxStatus.DONE)

    restarted = platform_with(store, Echo)
    asyncio.run(drain(restarted))
    for index in range(5):
        assert inbox_status(store, f"r{index}") == "done"
        assert runs(store, f"r{index}") == [("echo", "ok")]
    assert runs(store, "already-done") == []


def test_with_redis_recovery_publishes_only_stranded_deliveries(store, redis_url):
    import uuid

    from bot.bus import RedisStreamBus

    async def scenario():
        bus = RedisStreamBus(redis_url, stream=f"test:recover:{uuid.uuid4().hex}", block_ms=100)
        platform = platform_with(store, Counter, WAOOAW_BUS_VISIBILITY_TIMEOUT=0)
        platform.bus = bus
        try:
            enqueue(platform, "stranded")  # committed, never published: the web process died
            enqueue(platform, "on-the-bus")
            await bus.publish("on-the-bus")
            worker = platform.worker()
            assert await worker.recover() == 1
            assert await bus.depth() == 2
            assert await worker.recover() == 0  # both are on the bus now
            stop = asyncio.Event()
            consuming = asyncio.create_task(bus.consume(worker.handle, worker.bury, stop))
            for _ in range(200):
                if await bus.depth() == 0:
                    break
                await asyncio.sleep(0.05)
            stop.set()
            await consuming
        finally:
            await bus._redis.delete(bus.stream, bus.dead_stream, bus.errors_key)
            await bus.close()

    asyncio.run(scenario())
    assert inbox_status(store, "stranded") == "done" and inbox_status(store, "on-the-bus") == "done"
    assert runs(store, "stranded") == [("counter", "ok")] and runs(store, "on-the-bus") == [("counter", "ok")]


def test_a_context_saved_concurrently_is_never_overwritten(store):
    from agents.context.repository import ContextKey, StaleContext

    key = ContextKey(1, "o/r", "counter", "repo")
    with store.session() as session:
        repository.save(session, key, {"seen": 1}, expected_version=0)
    with pytest.raises(StaleContext):
        with store.session() as session:
            repository.save(session, key, {"seen": 1}, expected_version=0)
    with store.session() as session:
        assert repository.save(session, key, {"seen": 2}, expected_version=1).version == 2
