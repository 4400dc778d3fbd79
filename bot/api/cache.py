"""The latest-version cache on the event loop: its readers, and the API's own writes on PostgreSQL
(agents/context/cache.py has the rule, and the writers that commit in threads)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import structlog
from redis.exceptions import RedisError

from agents.context.cache import ENTRY_TTL_MS, LEASE_TTL_MS, cache_key, encode
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


class LatestReader:
    def __init__(self, redis_client: LoopRedis, limiter: RedisRateLimiter, *, prefix: str) -> None:
        self.redis, self.limiter, self.prefix = redis_client, limiter, prefix

    async def admit_and_lookup(self, gate: Gate, token_id: str, key: ContextKey) -> Hit | Lease | None:
        """`gate.limit` and the cache's read in one round trip (the hot path). Raises as the limit says; else
        the cached latest version, or a lease to fill it, or None (another reader holds it, or Redis failed)."""
        lease = secrets.token_hex(8)
        keys = [*self.limiter.keys(token_id), cache_key(self.prefix, key)]
        args = [*self.limiter.args(gate.clock()), lease, LEASE_TTL_MS]
        try:
            reply = await self.redis.script("admit_and_read")(keys=keys, args=args)
        except RedisError as exc:
            gate.enforce(token_id, unlimited(exc))
            return None
        gate.enforce(token_id, admission(reply[0], reply[1]))
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

    async def publish(self, row: ContextVersion) -> None:
        """A write's new version, before its writer is answered (LatestVersionCache.publish, on the loop)."""
        key = ContextKey(row.installation_id, row.repo, row.agent, row.scope)
        try:
            await self.redis.script("publish")(
                keys=[cache_key(self.prefix, key)], args=[row.id, row.version, encode(row), ENTRY_TTL_MS]
            )
        except RedisError as exc:
            log.warning("context_cache.publish_failed", context=f"{row.repo}/{row.agent}/{row.scope}", error=repr(exc))
