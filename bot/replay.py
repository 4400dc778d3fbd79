"""`waooaw replay`: one payload through inbox → bus → worker → agents → outputs, in this process."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import select

from agents.context.models import AgentRun
from bot import webhooks
from bot.app import build_platform
from bot.bus import LocalBus
from bot.inbox import InboxStatus
from bot.settings import Settings


async def replay_file(settings: Settings, file: Path, event: str, delivery_id: str) -> dict[str, Any]:
    try:
        delivery = webhooks.parse(file.read_bytes(), event=event, delivery_id=delivery_id)
    except webhooks.WebhookRejected as rejected:
        raise SystemExit(f"error: {file}: {rejected.reason}") from None
    bus = LocalBus(max_deliveries=settings.bus_max_deliveries, backoff_base=0.1)
    platform = build_platform(settings, bus=bus)
    await asyncio.to_thread(platform.store.upgrade)
    try:
        return await _replay(platform, bus, delivery)
    finally:
        await platform.publisher.close()
        platform.store.dispose()


async def _replay(platform, bus: LocalBus, delivery: webhooks.Delivery) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    wanted = await platform.wanted(delivery.event)
    status = InboxStatus.QUEUED if wanted else InboxStatus.IGNORED
    if not await asyncio.to_thread(platform.inbox.record, delivery, status):
        return _outcome(platform, delivery.delivery_id, "duplicate")
    if not wanted:
        return _outcome(platform, delivery.delivery_id, "ignored")
    worker = platform.worker()
    stop = asyncio.Event()
    consuming = asyncio.create_task(bus.consume(worker.handle, worker.bury, stop))
    await bus.publish(delivery.delivery_id)
    await bus.join()
    stop.set()
    await consuming
    record = platform.inbox.get(delivery.delivery_id)
    return _outcome(platform, delivery.delivery_id, record.status if record else "lost")


def _outcome(platform, delivery_id: str, status: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    with platform.store.session() as session:
        runs = session.scalars(select(AgentRun).where(AgentRun.delivery_id == delivery_id).order_by(AgentRun.id))
        return {
            "delivery": delivery_id,
            "status": status,
            "runs": [
                {"agent": run.agent, "attempt": run.attempt, "status": run.status, "error": run.error}
                for run in runs
            ],
        }
