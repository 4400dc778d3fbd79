"""What the Context API tests share: an app on a store, tokens, a clock the test moves, a live server."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
import uvicorn
from fastapi import FastAPI

from agents import tokens
from agents.store.db import Store
from bot.api import api_router
from tests.helpers import make_platform, make_settings


class Clock:
    """Epoch seconds that move only when the test says so."""

    def __init__(self, start: float | None = None) -> None:
        self.now = start if start is not None else time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def api_app(
    store: Store,
    *,
    redis_url: str | None = None,
    clock: Clock | None = None,
    prefix: str | None = None,
    **settings: Any,
) -> FastAPI:
    """Only the /api/v1 routes, on `store`; with `redis_url`, the cache and limiter under a prefix of its own."""
    overrides = dict(settings)
    if redis_url is not None:
        overrides["WAOOAW_REDIS_URL"] = redis_url
    platform = make_platform(store, settings=make_settings(**overrides))
    app = FastAPI()
    router = api_router(
        platform.settings, platform.store, clock=clock or time.time, redis_prefix=prefix or unique_prefix()
    )
    app.include_router(router)
    return app


def unique_prefix() -> str:
    return f"test:ctx:{uuid.uuid4().hex[:12]}:"


def drop_prefix(redis_url: str, prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def issue(store: Store, installation_id: int = 1, **options: Any) -> str:
    with store.session() as session:
        return tokens.issue(session, installation_id=installation_id, created_by="test", **options).token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def expired_token(store: Store, installation_id: int = 1) -> str:
    """Issued two hours ago for one hour: the issuing clock is the one moved, nothing waits."""
    with store.session() as session:
        return tokens.issue(
            session,
            installation_id=installation_id,
            ttl=timedelta(hours=1),
            now=datetime.now(UTC) - timedelta(hours=2),
        ).token


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """The app on a real uvicorn server on loopback, in a thread; yields its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise AssertionError("the test API server did not start")
        time.sleep(0.01)  # bounded start-up wait, not an assertion
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
