"""The /api/v1 router: what its routes share (Api) and how it is put together from the settings and the store."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from agents.context import cache as context_cache
from agents.context.service import ContextService
from agents.context.writes import ContextWriter, SessionWriter
from agents.store.db import Store
from bot.api import cache, coe_token, contexts, decisions, handoffs, snapshots
from bot.api.cache import LatestReader
from bot.api.limits import TOKEN_BUCKET_LUA, LocalRateLimiter, RateLimiter, RedisRateLimiter
from bot.api.loop_db import LoopDatabase
from bot.api.loop_writer import LoopWriter
from bot.api.route import Gate, gated_route
from bot.api.token_book import TOKEN_FRESH_SECONDS, TOKEN_STALE_SECONDS, TokenBook
from bot.loop_redis import LoopRedis
from bot.settings import Settings

PREFIX = "/api/v1"
# The store is synchronous: its calls run in threads, a few at a time. More threads only
# fight over the GIL with the event loop, and every request waits longer.
STORE_THREADS = 8
T = TypeVar("T")


@dataclass(frozen=True)
class Api:
    """What the routes share: the operations, the context writer, the cache (None without Redis), the route class."""

    service: ContextService
    writer: ContextWriter
    cache: LatestReader | None
    route_class: type[APIRoute]
    threads: anyio.CapacityLimiter

    async def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await anyio.to_thread.run_sync(partial(function, *args, **kwargs), limiter=self.threads)


def api_router(
    settings: Settings,
    store: Store,
    *,
    clock: Callable[[], float] = time.time,
    redis_prefix: str = context_cache.CACHE_PREFIX,
) -> APIRouter:
    """The /api/v1 routes on `store`, its Redis (WAOOAW_REDIS_URL) if any and the rate settings."""
    rate, burst = settings.api_rate_limit, settings.api_rate_burst
    database = LoopDatabase(store) if store.engine.dialect.name == "postgresql" else None
    redis_client: LoopRedis | None = None
    reader: LatestReader | None = None
    limiter: RateLimiter
    if settings.redis_url is None:
        limiter = LocalRateLimiter(rate=rate, burst=burst)
        book = TokenBook(store, database, fresh_seconds=0.0, clock=clock)
    else:
        # The versions written through this store are published where its readers look.
        prefix = context_cache.watch(store, settings.redis_url, prefix=redis_prefix).prefix
        redis_client = LoopRedis(settings.redis_url, {"bucket": TOKEN_BUCKET_LUA, **cache.SCRIPTS})
        limiter = RedisRateLimiter(redis_client, rate=rate, burst=burst, prefix=prefix)
        reader = LatestReader(redis_client, prefix=prefix)
        book = TokenBook(
            store, database, fresh_seconds=TOKEN_FRESH_SECONDS, stale_seconds=TOKEN_STALE_SECONDS, clock=clock
        )
    threads = anyio.CapacityLimiter(STORE_THREADS)
    sessions = SessionWriter(store, threads)
    writer: ContextWriter = sessions if database is None else LoopWriter(database, sessions, reader)
    api = Api(ContextService(store), writer, reader, gated_route(Gate(book, limiter, clock)), threads)

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
    router.include_router(decisions.router(api, store, settings.llm_budgets))
    router.include_router(coe_token.router(settings, store))  # OIDC, not the Context API's bearer gate
    return router
