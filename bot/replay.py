"""`waooaw replay`: one payload through inbox → bus → worker → agents → outputs, in this process.

Without GitHub credentials the outputs are printed as they would be posted (dry run),
and `clone` (a local git repository) stands in for GitHub where agents read the change.
"""

from __future__ import annotations

import asyncio
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import select

from agents.store.tables import AgentRun
from bot import webhooks
from bot.bus import LocalBus
from bot.git_reader import LocalClone
from bot.inbox import InboxStatus
from bot.settings import Settings
from bot.usage import UsageError
from bot.wiring import Platform, build_platform

# Events whose agents read the repository (WowVision): without credentials, only a clone shows them the change.
READS_THE_CHANGE = frozenset({"pull_request", "push", "check_run", "check_suite"})


async def replay_file(
    settings: Settings,
    file: Path,
    event: str,
    delivery_id: str,
    *,
    clone: Path | None = None,
    base: str | None = None,
    head: str | None = None,
) -> dict[str, Any]:
    """Raises UsageError for a payload, a clone or a ref that cannot be used."""
    try:
        delivery = webhooks.parse_delivery(file.read_bytes(), event=event, delivery_id=delivery_id)
    except webhooks.WebhookRejected as rejected:
        raise UsageError(f"{file}: {rejected.reason}") from None
    if clone is None and (base or head):
        raise UsageError("--base and --head name commits of a local clone: pass --repo PATH too")
    if clone is not None and settings.has_github_credentials:
        raise UsageError(
            "--repo reads the change from a local clone in a dry run; with GitHub credentials "
            "the agents read it from GitHub: drop --repo, or unset the credentials"
        )
    with LocalClone(clone, delivery.payload, base, head) if clone is not None else nullcontext() as reader:
        bus = LocalBus(max_deliveries=settings.bus_max_deliveries, backoff_base=0.1)
        platform = build_platform(settings, bus=bus, reader_for=(lambda _: reader) if reader is not None else None)
        await asyncio.to_thread(platform.store.upgrade)
        try:
            outcome = await push(platform, bus, delivery)
            if reader is not None:  # which change the clone gave, as commits of the clone
                outcome["clone"] = {"path": str(reader.git.repo), "base": reader.base, "head": reader.head}
            return outcome
        finally:
            await platform.publisher.close()
            platform.store.dispose()


async def push(platform: Platform, bus: LocalBus, delivery: webhooks.Delivery) -> dict[str, Any]:
    """Record the delivery, run the worker on it until it is done, and say what ran."""
    wanted = await platform.wanted(delivery.event, delivery.action)
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


def notes(settings: Settings, event: str, outcome: dict[str, Any], *, clone: Path | None) -> list[str]:
    """What a newcomer needs to hear when a replay shows nothing."""
    said = []
    if outcome["status"] == "done" and not outcome["runs"]:
        said.append(
            f"no agent woke on this {event} payload (`waooaw agents list` says what each wakes on)"
            + (
                "; a comment wakes one only with a command in it, e.g. `/waooaw help`"
                if event == "issue_comment"
                else ""
            )
        )
    if event in READS_THE_CHANGE and clone is None and not settings.has_github_credentials:
        said.append(
            "without GitHub credentials WowVision cannot read the change: pass --repo PATH "
            "(a local clone) to review it from there"
        )
    return said


def _outcome(platform: Platform, delivery_id: str, status: str) -> dict[str, Any]:
    with platform.store.session() as session:
        runs = session.scalars(select(AgentRun).where(AgentRun.delivery_id == delivery_id).order_by(AgentRun.id))
        return {
            "delivery": delivery_id,
            "status": status,
            "runs": [
                {"agent": run.agent, "attempt": run.attempt, "status": run.status, "error": run.error} for run in runs
            ],
        }
