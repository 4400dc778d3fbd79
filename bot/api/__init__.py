"""The Context API (v1): /api/v1/contexts, /snapshots and /handoffs.

Bearer tokens scoped to an installation (optionally a job, read-only), a rate limit
per token (Redis, or in process), and a read-through Redis cache of latest versions.
`create_app` includes `api_router(platform)`; the operations themselves are
agents.context.service, shared with the in-process ContextClient.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.background import BackgroundTask

from agents.context import cache as context_cache
from agents.context.documents import version_document
from agents.context.models import ContextVersion
from agents.context.service import Append, ContextService
from bot.api import coe_token, contexts, decisions, handoffs, snapshots
from bot.api.cache import LatestReader
from bot.api.gate import (
    ADMIT_AND_MARK_LUA,
    ADMIT_AND_READ_LUA,
    TOKEN_BUCKET_LUA,
    TOKEN_FRESH_SECONDS,
    TOKEN_STALE_SECONDS,
    Gate,
    LocalRateLimiter,
    LoopRedis,
    RedisRateLimiter,
    TokenBook,
    gated_route,
)
from bot.api.loop_db import LoopDatabase

if TYPE_CHECKING:
    from bot.app import Platform

PREFIX = "/api/v1"
STORE_THREADS = 8
T = TypeVar("T")


@dataclass(frozen=True)
class Api:
    """What the routes share: the operations, the cache (None without Redis), the gate and its route class."""

    service: ContextService
    cache: LatestReader | None
    gate: Gate
    route_class: type[APIRoute]
    # The store is synchronous: its calls run in threads, a few at a time. More threads only
    # fight over the GIL with the event loop, and every request waits longer.
    threads: anyio.CapacityLimiter = field(default_factory=lambda: anyio.CapacityLimiter(STORE_THREADS))

    database: LoopDatabase | None = None  # PostgreSQL: PUT's write and token loads run on the event loop

    async def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await anyio.to_thread.run_sync(partial(function, *args, **kwargs), limiter=self.threads)

    async def put(self, token_id: str, append: Append) -> tuple[dict[str, Any], BackgroundTask | None]:
        """ContextService.write under the token's rate limit; and what to run once the answer is sent.

        On PostgreSQL the write statement runs on the event loop; with the cache, the rate limit
        and the writer's mark take one round trip and the new version is published after the
        answer (agents/context/cache.py says why no reader can then miss it)."""
        if self.database is None or not self.database.serves_this_loop():
            await self.gate.limit(token_id)
            return await self.call(self.service.write, append), None
        if self.cache is None:
            await self.gate.limit(token_id)
            return version_document(await self._append(append)), None
        mark = await self.cache.admit_and_mark(self.gate, token_id, append.key)
        try:
            row = await self._append(append)
        except BaseException:
            await self.cache.finish(mark, None)
            raise
        answer = version_document(row)
        if mark is None or time.monotonic() - mark.at > context_cache.PUBLISH_BEFORE_ANSWER_SECONDS:
            await self.cache.finish(mark, row)
            return answer, None
        return answer, BackgroundTask(self.cache.finish, mark, row)

    async def _append(self, append: Append) -> ContextVersion:
        """The write on the loop's database; StaleContext if another version came first (the diagnosis
        reads the store, in a thread)."""
        assert self.database is not None
        row = await self.database.append(append)
        if row is None:
            await self.call(self.service.refuse_stale, append)  # raises
        return row


def api_router(
    platform: "Platform",
    *,
    clock: Callable[[], float] = time.time,
    redis_prefix: str = context_cache.DEFAULT_PREFIX,
) -> APIRouter:
    """The /api/v1 routes on the platform's store, its Redis (WAOOAW_REDIS_URL) if any and its rate settings."""
    settings = platform.settings
    rate, burst = settings.api_rate_limit, settings.api_rate_burst
    database = LoopDatabase(platform.store) if platform.store.engine.dialect.name == "postgresql" else None
    redis_client: LoopRedis | None = None
    if settings.redis_url is None:
        limiter: RedisRateLimiter | LocalRateLimiter = LocalRateLimiter(rate=rate, burst=burst)
        reader = None
        book = TokenBook(platform.store, database, fresh_seconds=0.0, clock=clock)
    else:
        # Every commit through this store publishes its new versions; readers use the same keys.
        writers = context_cache.watch(platform.store, settings.redis_url, prefix=redis_prefix)
        scripts = {
            "bucket": TOKEN_BUCKET_LUA,
            "fill": context_cache.FILL_LUA,
            "admit_and_read": ADMIT_AND_READ_LUA,
            "publish": context_cache.PUBLISH_LUA,
            "admit_and_mark": ADMIT_AND_MARK_LUA,
            "finish": context_cache.FINISH_LUA,
        }
        redis_client = LoopRedis(settings.redis_url, scripts)
        limiter = RedisRateLimiter(redis_client, rate=rate, burst=burst, prefix=writers.prefix)
        reader = LatestReader(redis_client, limiter, prefix=writers.prefix)
        book = TokenBook(
            platform.store, database, fresh_seconds=TOKEN_FRESH_SECONDS, stale_seconds=TOKEN_STALE_SECONDS, clock=clock
        )
    gate = Gate(book, limiter, clock)
    api = Api(ContextService(platform.store), reader, gate, gated_route(gate), database=database)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if database is not None:
            await database.open()
        yield
        if database is not None:
            await database.close()
        if redis_client is not None:
            await redis_client.close()

    router = APIRouter(prefix=PREFIX, lifespan=lifespan)
    router.include_router(contexts.router(api))
    router.include_router(snapshots.router(api))
    router.include_router(handoffs.router(api))
    router.include_router(decisions.router(api, platform.store))
    router.include_router(coe_token.router(platform))  # OIDC, not the Context API's bearer gate
    return router
