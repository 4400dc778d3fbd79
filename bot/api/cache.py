"""The latest-version cache on the event loop: its readers, and the API's own writes on PostgreSQL
(agents/context/cache.py has the rule, and the writers that commit in threads)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import structlog
from redis.exceptions import RedisError

from agents.context.cache import ENTRY_TTL_MS, LEASE_TTL_MS, MARK_TTL_MS, cache_key, encode, writing_key
from agents.context.models import ContextVersion
from agents.context.repository import ContextKey
from bot.api.gate import Gate, LoopRedis, RedisRateLimiter, admission, unlimited

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Hit:
    version: int
    body: bytes


@dataclass(frozen=True)
class Lease:
    """The right to fill the entry with what the database says, unless a write comes first."""

    token: str


@dataclass(frozen=True)
class Mark:
    """A writer's place in a context's set of writers in flight: readers read the database until it finishes."""

    key: ContextKey
    writer: str
    at: float = field(default_factory=time.monotonic)


class LatestReader:
    def __init__(self, redis_client: LoopRedis, limiter: RedisRateLimiter, *, prefix: str) -> None:
        self.redis, self.limiter, self.prefix = redis_client, limiter, prefix

    async def admit_and_lookup(self, gate: Gate, token_id: str, key: ContextKey) -> Hit | Lease | None:
        """`gate.limit` and the cache's read in one round trip (the hot path). Raises as the limit says; else
        the cached latest version, or a lease to fill it, or None (another reader holds it, or Redis failed)."""
        lease = secrets.token_hex(8)
        reply = await self._admit_and(gate, token_id, key, "admit_and_read", lease, LEASE_TTL_MS)
        if reply is None:
            return None
        if len(reply) == 4:
            return Hit(int(reply[2]), reply[3])
        return Lease(lease) if reply[2] == 1 else None

    async def fill(self, key: ContextKey, lease: Lease, row_id: int, version: int, body: bytes) -> None:
        try:
            await self.redis.script("fill")(
                keys=[cache_key(self.prefix, key)], args=[lease.token, row_id, version, body, ENTRY_TTL_MS]
            )
        except RedisError as exc:
            log.warning("context_cache.fill_failed", error=repr(exc))

    async def admit_and_mark(self, gate: Gate, token_id: str, key: ContextKey) -> Mark | None:
        """`gate.limit` and the writer's mark in one round trip. Raises as the limit says; else the mark,
        or None if Redis failed (then nothing was marked: publish before answering)."""
        mark = Mark(key, secrets.token_hex(8))
        reply = await self._admit_and(gate, token_id, key, "admit_and_mark", mark.writer, MARK_TTL_MS)
        return None if reply is None else mark

    async def _admit_and(self, gate: Gate, token_id: str, key: ContextKey, script: str, *args: object) -> list[Any] | None:
        """The token's rate limit, then `script`'s work on the context's entry, in one round trip. Raises as
        the limit says; None if Redis could not be asked (the request goes on unlimited, as `Gate.limit`)."""
        entry = cache_key(self.prefix, key)
        keys = [*self.limiter.keys(token_id), entry, writing_key(entry)]
        try:
            reply = await self.redis.script(script)(keys=keys, args=[*self.limiter.args(gate.clock()), *args])
        except RedisError as exc:
            gate.enforce(token_id, unlimited(exc))
            return None
        gate.enforce(token_id, admission(reply[0], reply[1]))
        return reply

    async def finish(self, mark: Mark | None, row: ContextVersion | None) -> None:
        """Publish a write's new version (if it made one) and leave the writers in flight (if marked)."""
        if mark is None and row is None:
            return
        key = mark.key if mark is not None else ContextKey(row.installation_id, row.repo, row.agent, row.scope)
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
