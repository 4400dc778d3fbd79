"""An asyncio Redis client for the running event loop, with its Lua scripts: the Context API's (rate
limit, cache) and GitHub's limits and conditional reads (bot/ratelimit.py, bot/conditional.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis

REDIS_CONNECTIONS = 64


class LoopRedis:
    """A server runs one loop; a TestClient may run one per `with` block, and a client
    made on one loop cannot be used on another: a client is made for each loop that asks."""

    def __init__(self, url: str, scripts: dict[str, str] | None = None) -> None:
        self.url = url
        self._sources = scripts or {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: aioredis.Redis | None = None
        self._scripts: dict[str, Any] = {}

    def client(self) -> aioredis.Redis:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            # Blocking: a burst of requests waits for a connection instead of failing (the plain pool raises).
            pool = aioredis.BlockingConnectionPool.from_url(
                self.url, max_connections=REDIS_CONNECTIONS, timeout=5, socket_timeout=2, socket_connect_timeout=2
            )
            self._client = aioredis.Redis.from_pool(pool)
            self._loop = loop
            self._scripts = {name: self._client.register_script(source) for name, source in self._sources.items()}
        return self._client

    def script(self, name: str) -> Any:
        self.client()
        return self._scripts[name]

    async def close(self) -> None:
        if self._client is not None and self._loop is asyncio.get_running_loop():
            await self._client.aclose()
        self._client = None
