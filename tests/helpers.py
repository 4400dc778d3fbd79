"""Small builders the tests share: a platform on a given store, signed requests, the app taking deliveries."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from fastapi.testclient import TestClient

from agents.catalog import default_registry
from agents.store.db import Store
from bot.app import create_app
from bot.bus import EventBus, LocalBus
from bot.publish import DryRunPublisher, Publisher
from bot.settings import Settings
from bot.webhooks import sign
from bot.wiring import Platform
from tests.conftest import TEST_SECRET


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"GITHUB_WEBHOOK_SECRET": TEST_SECRET, "WAOOAW_AGENT_TIMEOUT": 10.0}
    values.update(overrides)
    return Settings(**values)


def make_platform(
    store: Store,
    *,
    settings: Settings | None = None,
    bus: EventBus | None = None,
    publisher: Publisher | None = None,
) -> Platform:
    return Platform(
        settings=settings or make_settings(),
        store=store,
        registry=default_registry(store),
        bus=bus or LocalBus(backoff_base=0.01),
        publisher=publisher or DryRunPublisher(io.StringIO()),
    )


def github_platform(store: Store, fake_url: str, **settings: Any) -> Platform:
    """A platform that publishes to and reads from the fake GitHub at `fake_url`, with token auth."""
    from bot.github import GitHubClients
    from bot.publish import GitHubPublisher
    from bot.reader import GitHubReader

    clients = GitHubClients(make_settings(GITHUB_TOKEN="ghs_test", GITHUB_API_URL=fake_url, **settings), max_wait=1)
    platform = make_platform(store, settings=make_settings(**settings), publisher=GitHubPublisher(store, clients))
    platform.reader_for = lambda event: GitHubReader(clients, event.installation_id)
    return platform


class FakeClock:
    """A `bot.ratelimit.Clock` whose sleeps pass at once: time moves only by them or by `advance`."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.time = start
        self.slept: list[float] = []

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.time += seconds
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        self.time += seconds


def signed_headers(body: bytes, event: str, delivery: str | None = None, secret: str = TEST_SECRET) -> dict[str, str]:
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(secret, body),
        "Content-Type": "application/json",
    }


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


async def drain(platform: Platform) -> None:
    """Run a worker on the platform's local bus until everything unfinished in the inbox is handled."""
    assert isinstance(platform.bus, LocalBus)
    worker = platform.worker()
    await worker.recover()
    stop = asyncio.Event()
    consuming = asyncio.create_task(platform.bus.consume(worker.handle, worker.bury, stop))
    await platform.bus.join()
    stop.set()
    await consuming


class Accepted(NamedTuple):
    """The app's 202 answer to a delivery: its id, and `queued`, `duplicate` or `ignored`."""

    delivery: str
    status: str


Deliver = Callable[..., Accepted]


@contextmanager
def delivering(build: Callable[[], Platform]) -> Iterator[Deliver]:
    """The app on a test client, and `deliver(event, payload, delivery=None, worker=None)`: it posts the
    payload signed, as GitHub does, asserts the app took it (202), drains the inbox with a worker and
    returns the app's answer.

    `build` makes the platform for intake, and a new one for each drain, since a local bus lives on the
    event loop of the drain that made it; `worker` builds that drain's platform instead (one with
    Claude, say, when intake's has none).
    """
    with TestClient(create_app(build(), secret=TEST_SECRET, run_worker=False)) as client:

        def deliver(
            event: str,
            payload: dict[str, Any],
            delivery: str | None = None,
            *,
            worker: Callable[[], Platform] | None = None,
        ) -> Accepted:
            body = body_of(payload)
            response = client.post("/webhooks/github", content=body, headers=signed_headers(body, event, delivery))
            assert response.status_code == 202, response.text
            asyncio.run(_work((worker or build)()))
            answer = response.json()
            return Accepted(answer["delivery"], answer["status"])

        yield deliver


async def _work(platform: Platform) -> None:
    """Drain the inbox, then close the platform's Claude client on the event loop it used."""
    try:
        await drain(platform)
    finally:
        if platform.llm is not None:
            await platform.llm.aclose()
