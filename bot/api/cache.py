"""The latest-version cache on the event loop: its readers, and the API's own writes on PostgreSQL
(agents/context/cache.py has the rule, and the writers that commit in threads)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

import structlog
from redis.exceptions import RedisError

from agents.context.cache import (
    ENTRY_TTL_MS,
    FILL_LUA,
    FINISH_LUA,
    LEASE_TTL_MS,
    MARK_FUNCTION,
    MARK_TTL_MS,
    PUBLISH_LUA,
    READ_LUA,
    cache_key,
    encode,
    writing_key,
)
from agents.context.models import ContextVersion
from agents.context.repository import ContextKey
from bot.loop_redis import LoopRedis

log = structlog.get_logger(__name__)

# What LatestReader runs, by name, on LoopRedis.
SCRIPTS = {
    "read": READ_LUA,
    "fill": FILL_LUA,
    "mark": MARK_FUNCTION + "mark_writing(KEYS[1], KEYS[2], ARGV[1], ARGV[2])",
    "publish": PUBLISH_LUA,
    "finish": FINISH_LUA,
}


@dataclass(frozen=True)
class Hit:
    version: int
    body: bytes


@dataclass(frozen=True)
class FillLease:
    """The right to fill the entry with what the database says, unless a write comes first."""

    token: str


@dataclass(frozen=True)
class Mark:
    """A writer's place in a context's set of writers in flight: readers read the database until it finishes."""

    key: ContextKey
    writer: str
    at: float = field(default_factory=time.monotonic)


class LatestReader:
    def __init__(self, redis_client: LoopRedis, *, prefix: str) -> None:
        self.redis, self.prefix = redis_client, prefix

    async def lookup(self, key: ContextKey) -> Hit | FillLease | None:
        """The cached latest version, or a lease to fill it, or None (another reader holds it, a write is
        in flight, or Redis failed: read the database and fill nothing)."""
        lease = secrets.token_hex(8)
        entry = cache_key(self.prefix, key)
        try:
            found = await self.redis.script("read")(keys=[entry, writing_key(entry)], args=[lease, LEASE_TTL_MS])
        except RedisError as exc:
            log.warning("context_cache.read_failed", error=repr(exc))
            return None
        if isinstance(found, list):
            return Hit(int(found[0]), found[1])
        return FillLease(lease) if found == 1 else None

    async def fill(self, key: ContextKey, lease: FillLease, row_id: int, version: int, body: bytes) -> None:
        try:
            await self.redis.script("fill")(
                keys=[cache_key(self.prefix, key)], args=[lease.token, row_id, version, body, ENTRY_TTL_MS]
            )
        except RedisError as exc:
            log.warning("context_cache.fill_failed", error=repr(exc))

    async def mark(self, key: ContextKey) -> Mark | None:
        """Join the context's writers in flight before writing it: the mark, or None if Redis failed
        (then nothing was marked: publish before answering)."""
        mark = Mark(key, secrets.token_hex(8))
        entry = cache_key(self.prefix, key)
        try:
            await self.redis.script("mark")(keys=[entry, writing_key(entry)], args=[mark.writer, MARK_TTL_MS])
        except RedisError as exc:
            log.warning("context_cache.mark_failed", error=repr(exc))
            return None
        return mark

    async def finish(self, mark: Mark | None, row: ContextVersion | None) -> None:
        """Publish a write's new version (if it made one) and leave the writers in flight (if marked)."""
        if mark is not None:
            key = mark.key
        elif row is not None:
            key = ContextKey(row.installation_id, row.repo, row.agent, row.scope)
        else:
            return
        entry = cache_key(self.prefix, key)
        version = [] if row is None else [row.id, row.version, encode(row), ENTRY_TTL_MS]
        try:
            if mark is None:
                await self.redis.script("publish")(keys=[entry], args=version)
            else:
                await self.redis.script("finish")(keys=[entry, writing_key(entry)], args=[mark.writer, *version])
        except RedisError as exc:
            # Marked: readers read the database until the mark expires, and then fill the emptied entry.
            log.warning("context_cache.publish_failed", context=f"{key.repo}/{key.agent}/{key.scope}", error=repr(exc))
