"""The rate limit per token: a token bucket in Redis shared by every process, or in process without Redis.

Applied once per request, by the route class (bot/api/route.py). The Redis script also
checks the token's revocation marker (bot/api/revocation.py) in the same round trip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import structlog
from redis.exceptions import RedisError

from bot.api.revocation import revocation_key
from bot.loop_redis import LoopRedis

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Admission:
    allowed: bool
    retry_after: float = 0.0
    revoked: bool = False
    vouched: bool = True  # False: Redis could not be asked, so no revocation marker was checked


class RateLimiter(Protocol):
    async def acquire(self, token_id: str, now: float) -> Admission: ...


# KEYS bucket, revocation marker; ARGV rate/s, burst, now s → {1 allowed | 0 refused | -1 revoked, seconds to wait}
TOKEN_BUCKET_LUA = """
if redis.call('EXISTS', KEYS[2]) == 1 then return {-1, '0'} end
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]), tonumber(state[2])
if tokens == nil or at == nil then tokens, at = burst, now end
if now > at then tokens = math.min(burst, tokens + (now - at) * rate); at = now end
local allowed, wait = 0, 0
if tokens >= 1 then tokens = tokens - 1; allowed = 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'at', string.format('%.17g', at))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, string.format('%.17g', wait)}
"""


class RedisRateLimiter:
    """A token bucket per API token in Redis, shared by every process; the same call checks revocation."""

    def __init__(self, redis_client: LoopRedis, *, rate: float, burst: int, prefix: str) -> None:
        self.redis, self.rate, self.burst, self.prefix = redis_client, rate, burst, prefix

    async def acquire(self, token_id: str, now: float) -> Admission:
        keys = [f"{self.prefix}api:rate:{token_id}", revocation_key(self.prefix, token_id)]
        try:
            allowed, wait = await self.redis.script("bucket")(keys=keys, args=[self.rate, self.burst, repr(now)])
        except RedisError as exc:
            # The API stays up without its limiter; the store is still the authority on tokens.
            log.warning("api.rate_limit_unavailable", error=repr(exc))
            return Admission(True, vouched=False)
        return Admission(allowed == 1, float(wait), revoked=allowed == -1)


class LocalRateLimiter:
    """The same token bucket in this process, for a set-up without Redis (one process)."""

    def __init__(self, *, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}

    async def acquire(self, token_id: str, now: float) -> Admission:
        tokens, at = self._buckets.get(token_id, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + max(0.0, now - at) * self.rate)
        if len(self._buckets) > 10_000:  # forget tokens idle long enough to have a full bucket again
            full_after = self.burst / self.rate
            self._buckets = {ident: state for ident, state in self._buckets.items() if now - state[1] < full_after}
        if tokens >= 1:
            self._buckets[token_id] = (tokens - 1, now)
            return Admission(True)
        self._buckets[token_id] = (tokens, now)
        return Admission(False, (1 - tokens) / self.rate)
