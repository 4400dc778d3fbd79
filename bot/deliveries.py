"""Missed webhook deliveries, fetched back: what `waooaw deliveries recover` and the app's schedule run.

GitHub does not redeliver on its own, but it keeps an App's deliveries for three days and
redelivers one when asked. A recovery lists them (`GET /app/hook/deliveries`, newest first,
paged by the `cursor` of the Link header, as the App with its JWT), groups the attempts of
one delivery by their `guid` (the X-GitHub-Delivery our inbox is keyed by; a redelivery
keeps it) and asks GitHub to redeliver (`POST /app/hook/deliveries/{id}/attempts`) each
delivery that is not in our inbox and

- failed every time (a status other than OK, a status code of 400 or more, or 0 for no answer), or
- succeeded without reaching our inbox (its answer came from elsewhere).

The inbox keeps it idempotent: a delivery recorded there is never redelivered, however its
attempts look on GitHub, and a redelivery that arrives twice is recorded once. A delivery
GitHub says was redelivered with success that is still not in the inbox is reported and left
alone: asking again would only send it to the same place (the App's webhook URL is not ours).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from githubkit.exception import GitHubException, RequestFailed

from agents.store.tables import utcnow
from bot.schedule import Lease, Leases, run_every

if TYPE_CHECKING:
    from githubkit import GitHub
    from githubkit_schemas.latest.models import HookDeliveryItem

    from bot.github import GitHubClients
    from bot.inbox import Inbox
    from bot.settings import Settings

log = structlog.get_logger(__name__)

RECOVERY_JOB = "deliveries-recover"  # the schedule's lease
GITHUB_KEEPS = timedelta(hours=72)  # how far back GitHub can redeliver
PAGE_SIZE = 100  # GitHub's largest page


@dataclass(frozen=True)
class Missed:
    """A delivery GitHub made that our inbox does not hold, and why we ask for it again."""

    guid: str
    attempt_id: int  # the newest attempt: the one GitHub is asked to redeliver
    event: str
    action: str | None
    delivered_at: datetime  # of the newest attempt
    reason: str

    @property
    def name(self) -> str:
        return f"{self.event}.{self.action}" if self.action else self.event


@dataclass
class Recovery:
    since: datetime
    dry_run: bool
    attempts: int = 0  # attempts GitHub listed since `since`
    deliveries: int = 0  # distinct guids among them
    missed: list[Missed] = field(default_factory=list)
    redelivered: list[Missed] = field(default_factory=list)
    refused: list[tuple[Missed, str]] = field(default_factory=list)  # GitHub refused to redeliver: why
    elsewhere: list[str] = field(default_factory=list)  # guids redelivered with success, still not ours

    @property
    def ok(self) -> bool:
        return not self.refused

    def lines(self) -> list[str]:
        """What it did, one line a delivery and a summary, for the command line."""
        verb = "would redeliver" if self.dry_run else "redelivered"
        done = self.missed if self.dry_run else self.redelivered
        out = [f"{verb} {m.guid} {m.name} ({m.reason}, {m.delivered_at:%Y-%m-%d %H:%M:%SZ})" for m in done]
        out += [f"could not redeliver {m.guid} {m.name}: {why}" for m, why in self.refused]
        out += [
            f"left alone {guid}: GitHub redelivered it with success but it is not in the inbox "
            "(does the App's webhook URL lead to this deployment?)"
            for guid in self.elsewhere
        ]
        out.append(
            f"{self.attempts} attempt(s) of {self.deliveries} delivery(ies) since {self.since:%Y-%m-%d %H:%M:%SZ}: "
            f"{len(self.missed)} missed, {len(done)} {verb}, {len(self.refused)} refused"
        )
        return out


def failed(item: HookDeliveryItem) -> bool:
    return item.status != "OK" or item.status_code >= 400 or item.status_code == 0


async def recover(clients: GitHubClients, inbox: Inbox, since: timedelta, *, dry_run: bool = False) -> Recovery:
    """List the App's deliveries of the last `since` and redeliver the missed ones (only list them in a dry run).

    Raises `GitHubCredentialsError` without App credentials, and githubkit's errors when the list fails.
    """
    github = clients.app()
    recovery = Recovery(since=utcnow() - since, dry_run=dry_run)
    attempts = await list_attempts(github, recovery.since)
    known = await asyncio.to_thread(inbox.known, {item.guid for item in attempts})
    recovery.attempts, recovery.deliveries = len(attempts), len({item.guid for item in attempts})
    recovery.missed, recovery.elsewhere = missed(attempts, known)
    if not dry_run:
        for delivery in recovery.missed:
            try:
                await github.rest.apps.async_redeliver_webhook_delivery(delivery.attempt_id)
            except GitHubException as exc:
                recovery.refused.append((delivery, why := _why(exc)))
                log.warning("deliveries.redeliver_refused", guid=delivery.guid, attempt=delivery.attempt_id, error=why)
            else:
                recovery.redelivered.append(delivery)
    log.info(
        "deliveries.recovered",
        since=recovery.since.isoformat(),
        attempts=recovery.attempts,
        missed=len(recovery.missed),
        redelivered=len(recovery.redelivered),
        refused=len(recovery.refused),
        elsewhere=len(recovery.elsewhere),
        dry_run=dry_run,
    )
    return recovery


async def list_attempts(github: GitHub[Any], since: datetime) -> list[HookDeliveryItem]:
    """Every delivery attempt GitHub lists from `since` on; paging stops at the first older one (newest first)."""
    attempts: list[HookDeliveryItem] = []
    async for item in github.rest.paginate(github.rest.apps.async_list_webhook_deliveries, per_page=PAGE_SIZE):
        if item.delivered_at < since:
            break
        attempts.append(item)
    return attempts


def missed(attempts: Iterable[HookDeliveryItem], known: set[str]) -> tuple[list[Missed], list[str]]:
    """The deliveries to ask for again, oldest first, and the guids GitHub says it redelivered that are not ours."""
    by_guid: dict[str, list[HookDeliveryItem]] = {}
    for item in attempts:
        if item.guid not in known:
            by_guid.setdefault(item.guid, []).append(item)
    wanted: list[Missed] = []
    elsewhere: list[str] = []
    for guid, tries in by_guid.items():
        newest = max(tries, key=lambda item: (item.delivered_at, item.id))
        succeeded = [item for item in tries if not failed(item)]
        if any(item.redelivery for item in succeeded):
            elsewhere.append(guid)
            continue
        reason = "answered OK but not in the inbox" if succeeded else f"failed: {_status(newest)}"
        wanted.append(Missed(guid, newest.id, newest.event, newest.action, newest.delivered_at, reason))
    wanted.sort(key=lambda delivery: delivery.delivered_at)
    return wanted, elsewhere


async def scheduled(clients: GitHubClients, inbox: Inbox, interval: timedelta, lease: Lease) -> Recovery:
    """One run of the app's schedule: from an interval before the last run began (a delivery GitHub
    lists a little late is not missed), or GitHub's three days on the first run or after a long stop."""
    start = utcnow() - GITHUB_KEEPS
    if lease.last_done_at is not None:
        start = max(start, lease.last_done_at - interval)
    return await recover(clients, inbox, utcnow() - start)


def recovery_schedule(
    settings: Settings, clients: GitHubClients | None, inbox: Inbox, stop: asyncio.Event
) -> Coroutine[Any, Any, None] | None:
    """The app's recovery, every WAOOAW_DELIVERIES_RECOVER_INTERVAL until `stop`, one process of several at a
    time; None when it is off (an interval of 0, or no App credentials: only the App may list its deliveries)."""
    interval = settings.deliveries_recover_interval
    if interval <= timedelta(0) or clients is None or clients.mode != "app":
        return None
    log.info("deliveries.schedule", every_s=interval.total_seconds())
    return run_every(
        interval, RECOVERY_JOB, lambda lease: scheduled(clients, inbox, interval, lease), Leases(inbox.store), stop
    )


def _status(item: HookDeliveryItem) -> str:
    code = str(item.status_code)
    return item.status if item.status_code == 0 or code in item.status else f"{code} {item.status}"


def _why(exc: GitHubException) -> str:
    if isinstance(exc, RequestFailed):
        return f"{exc.response.status_code} {exc.response.text[:200]}"
    return f"{exc.__class__.__name__}: {exc}"
