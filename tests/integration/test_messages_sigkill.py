"""A handoff wakes its addressee exactly once in effect across a worker SIGKILLed mid-run:
PostgreSQL, Redis Streams, the doomed worker a process of its own (tests/integration/message_worker.py)."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
import redis
from sqlalchemy import select

from agents.context.models import Handoff
from agents.store.tables import AgentMessage, AgentRun, InboxRecord
from bot.bus import RedisStreamBus
from bot.inbox import Inbox, InboxStatus
from bot.webhooks import parse_delivery
from tests.conftest import ROOT, load_payload
from tests.helpers import body_of
from tests.integration import message_worker

WAIT = 30.0  # an upper bound on each wait, never an assertion on speed


@pytest.fixture
def stream(redis_url: str) -> Iterator[str]:
    name = f"test:messages:{uuid.uuid4().hex}"
    yield name
    client = redis.Redis.from_url(redis_url)
    try:
        client.delete(name, f"{name}:dead", f"{name}:errors")
    finally:
        client.close()


async def wait_for(condition, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not await asyncio.to_thread(condition):
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {WAIT:g} s waiting for: {what}")
        await asyncio.sleep(0.05)


def runs(store, agent: str) -> list[str]:
    with store.session() as session:
        return list(session.scalars(select(AgentRun.status).where(AgentRun.agent == agent).order_by(AgentRun.id)))


def all_done(store) -> bool:
    with store.session() as session:
        statuses = set(session.scalars(select(InboxRecord.status)))
    return statuses == {"done"}


@pytest.mark.parametrize("hang", ["receiver", "sender"])
def test_a_handoff_wakes_its_addressee_exactly_once_across_a_sigkilled_worker(
    pg_store, redis_url, stream, tmp_path, hang
):
    """`receiver`: killed in the addressee's execute; `sender`: killed after the sender's messages were
    committed and put on the bus, before its run was recorded as done (the rescuer runs it again)."""
    store = pg_store
    database_url = store.url
    payload = load_payload("issue_comment/created.with-installation.payload.json", comment__body="draft it")
    delivery = parse_delivery(body_of(payload), event="issue_comment", delivery_id=f"d-{uuid.uuid4().hex}")
    assert Inbox(store).record(delivery, InboxStatus.QUEUED)
    flag, log = tmp_path / "hung", tmp_path / "doomed.log"

    async def scenario() -> str:
        intake = RedisStreamBus(redis_url, stream=stream)
        await intake.publish(delivery.delivery_id)  # as the webhook does once the row is committed
        await intake.close()
        with log.open("wb") as written:
            doomed = subprocess.Popen(
                [sys.executable, "-m", "tests.integration.message_worker", database_url, redis_url, stream, hang, flag],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdout=written,
                stderr=subprocess.STDOUT,
            )
        try:
            await wait_for(lambda: flag.exists() or doomed.poll() is not None, f"the doomed worker to hang at {hang}")
            assert doomed.poll() is None, log.read_text()[-3000:]
        finally:
            doomed.send_signal(signal.SIGKILL)
            doomed.wait(timeout=WAIT)
            print(f"----- the doomed worker's log\n{log.read_text()[-3000:]}")

        output = io.StringIO()
        rescuer = message_worker.worker(database_url, redis_url, stream, "rescuer", output)
        stop = asyncio.Event()
        running = asyncio.create_task(rescuer.run(stop))
        try:
            await wait_for(lambda: all_done(store) and "ok" in runs(store, "receiver"), "the rescuer to finish")
        finally:
            stop.set()
            await asyncio.wait_for(running, WAIT)
            await rescuer.bus.close()
            rescuer.store.dispose()
        return output.getvalue()

    printed = asyncio.run(scenario())

    with store.session() as session:
        sent = list(session.scalars(select(AgentMessage)))
        handoffs = list(session.scalars(select(Handoff)))
    assert [(m.kind, m.sender, m.addressee, m.causation) for m in sent] == [
        ("handoff", "sender", "receiver", delivery.delivery_id)
    ]
    assert [h.id for h in handoffs] == [sent[0].handoff_id]
    assert runs(store, "sender") == (["abandoned", "ok"] if hang == "sender" else ["ok"])
    assert runs(store, "receiver") == (["abandoned", "ok"] if hang == "receiver" else ["ok"])
    assert printed.count("waooaw:receiver:comment:got") == 1
