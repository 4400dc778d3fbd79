"""GitHub's rate limits, kept per installation and shared by every process through Redis.

Every call of a client from bot/github.py passes `Limiter.before` (githubkit's throttler)
and every answer `Limiter.after` (an httpx response hook), so no call site has to care:

- `after` reads `x-ratelimit-remaining`, `-limit` and `-reset` (the core quota) and, on a
  403 or 429 that is a rate limit, pauses the installation: until `retry-after`, else until
  `x-ratelimit-reset`, else 60 s, doubling while GitHub keeps refusing without saying how long.
- `before` holds a call until the pause is over; once the quota runs low it spreads the
  calls left evenly up to the reset (none left: it waits for the reset); and it gives each
  content-creating call (POST, PUT, PATCH in a repository) a slot within 80 a minute and 500
  an hour.
- A call that would wait longer than its budget is not made: `GitHubRateLimited` says when to try
  again, and the worker hands the delivery back to the bus for then (bot/worker.py).

With Redis the figures live there (a hash and a sorted set per installation, read and
changed by one Lua script per call), so every worker on every machine counts against one
quota; without Redis (the embedded default) they live in this process. While Redis cannot
be reached a process goes on with its own figures rather than with none.
"""

from __future__ import annotations

import asyncio
import bisect
import re
import time
import uuid
from collections.abc import AsyncGenerator, Generator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import structlog
from githubkit.throttling import BaseThrottler, LocalThrottler
from redis.exceptions import RedisError

from bot.loop_redis import LoopRedis

log = structlog.get_logger(__name__)

CONTENT_PER_MINUTE = 80  # GitHub's secondary limits on content-creating requests
CONTENT_PER_HOUR = 500
MAX_CONCURRENT = 100  # GitHub's secondary limit on concurrent requests (githubkit's own cap, kept)
LOW_QUOTA = 0.1  # below this share of the primary quota left, calls are spread up to the reset
UNTOLD_PAUSE = 60.0  # seconds: a rate limit GitHub gave no time for, doubled on each one in a row
UNTOLD_DOUBLINGS = 5  # ... up to 32 minutes
RESET_MARGIN = 1.0  # seconds after `x-ratelimit-reset` (clocks differ)
STATE_TTL = 7200  # seconds Redis keeps an installation's figures unused (a quota window is an hour)
GITHUB_PREFIX = "waooaw:github:"
CONTENT_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Content lives in repositories; writes elsewhere (a token's mint, a redelivery, GraphQL) create none.
IN_A_REPOSITORY = re.compile(r"/repos/[^/]+/[^/]+/")
COUNT = re.compile(r"[0-9]+")  # how GitHub writes a count (`int()` would also take a sign, spaces and `_`)


class GitHubRateLimited(Exception):
    """A GitHub call would have to wait longer than its budget: not made; try again after `retry_after` s."""

    def __init__(self, key: str, retry_after: float) -> None:
        self.key = key
        self.retry_after = retry_after
        super().__init__(f"GitHub rate limit of {key}: the call can go in {retry_after:.0f} s")


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch: GitHub's `x-ratelimit-reset` is one."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass(frozen=True)
class Quota:
    """The core quota as an answer's `x-ratelimit-*` headers tell it."""

    remaining: int
    limit: int
    reset: float


@dataclass(frozen=True)
class RateLimitHeaders:
    """What an answer's `x-ratelimit-*` headers say; a figure missing or malformed is None."""

    resource: str  # `core` when untold
    remaining: int | None
    limit: int | None
    reset: float | None  # epoch seconds

    @property
    def quota(self) -> Quota | None:
        """The core quota, when all three figures are told."""
        if self.resource != "core":
            return None  # search and GraphQL have quotas of their own, which we do not pace
        if self.remaining is None or self.limit is None or self.reset is None:
            return None
        return Quota(self.remaining, self.limit, self.reset)


@dataclass(frozen=True)
class Verdict:
    """What one answer says about the limits: the quota, and any pause it asks for."""

    quota: Quota | None = None
    pause_until: float | None = None  # retry-after or reset: a time GitHub gave
    untold: bool = False  # a rate limit without a time: the store pauses 60 s, doubling

    @property
    def limited(self) -> bool:
        return self.untold or self.pause_until is not None


def creates_content(request: httpx.Request) -> bool:
    return request.method in CONTENT_METHODS and IN_A_REPOSITORY.search(request.url.path) is not None


def read_ratelimit(headers: httpx.Headers) -> RateLimitHeaders:
    """The one reader of GitHub's `x-ratelimit-*` headers: the limiter's quota and the metrics' gauge."""
    return RateLimitHeaders(
        resource=headers.get("x-ratelimit-resource", "core"),
        remaining=_count(headers.get("x-ratelimit-remaining")),
        limit=_count(headers.get("x-ratelimit-limit")),
        reset=_number(headers.get("x-ratelimit-reset")),
    )


def is_rate_limit(response: httpx.Response) -> bool:
    """A 429, or a 403 that is a rate limit (a plain 403 is a missing permission). The body is read."""
    if response.status_code == 429:
        return True
    if response.status_code != 403:
        return False
    if "retry-after" in response.headers or read_ratelimit(response.headers).remaining == 0:
        return True
    return "rate limit" in response.text.lower()


def read_verdict(response: httpx.Response, now: float) -> Verdict:
    told = read_ratelimit(response.headers)
    if not is_rate_limit(response):
        return Verdict(told.quota)
    if (retry_after := _number(response.headers.get("retry-after"))) is not None:
        return Verdict(told.quota, now + max(retry_after, 0.0))
    if told.reset is not None:
        return Verdict(told.quota, max(told.reset + RESET_MARGIN, now + RESET_MARGIN))
    return Verdict(told.quota, untold=True)


def _count(value: str | None) -> int | None:
    return int(value) if value is not None and COUNT.fullmatch(value) else None


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


# ---------------------------------------------------------------- where the figures live


class LimitStore(Protocol):
    async def hold(self, key: str, now: float, *, content: bool, budget: float) -> float:
        """When a call of `key` may go (epoch seconds). Unless that is more than `budget` away, the call
        is counted: the next paced call goes after it, and a content-creating call takes its slot.
        (The quota left is what answers say, never counted down here: a 304 costs none.)"""
        ...

    async def observe(self, key: str, now: float, verdict: Verdict) -> float | None:
        """Record what an answer said; the installation's pause when it asked for one."""
        ...

    async def paused_until(self, key: str) -> float:
        """Until when (epoch seconds) a rate limit keeps every call of `key` back; 0 when none ever did."""
        ...

    async def close(self) -> None: ...


@dataclass
class _Figures:
    remaining: int | None = None
    limit: int | None = None
    reset: float = 0.0
    next_at: float = 0.0  # the next call's earliest time while the quota is low
    paused_until: float = 0.0
    strikes: int = 0  # untold rate limits in a row
    content: list[float] = field(default_factory=list)  # the times of content-creating calls, sorted


class LocalLimits:
    """The figures in this process: the embedded default, and a process's own while Redis is away."""

    def __init__(self) -> None:
        self._figures: dict[str, _Figures] = {}

    async def hold(self, key: str, now: float, *, content: bool, budget: float) -> float:
        figures = self._figures.setdefault(key, _Figures())
        at = max(now, figures.paused_until)
        paced = None
        if figures.remaining is not None and figures.limit is not None and figures.reset > at:
            if figures.remaining <= 0:
                at = figures.reset + RESET_MARGIN
            elif figures.remaining < figures.limit * LOW_QUOTA:
                at = max(at, figures.next_at)
                paced = at + (figures.reset - at) / figures.remaining
        if content:
            del figures.content[: bisect.bisect_right(figures.content, now - 3600)]
            at = max(at, _content_slot(figures.content, len(figures.content)))
        if at - now > budget:
            return at
        if paced is not None:
            figures.next_at = paced
        if content:
            bisect.insort(figures.content, at)
        return at

    async def observe(self, key: str, now: float, verdict: Verdict) -> float | None:
        figures = self._figures.setdefault(key, _Figures())
        quota = verdict.quota
        if quota is not None:
            if figures.remaining is None or quota.reset > figures.reset:  # a new window
                figures.remaining, figures.limit, figures.reset = quota.remaining, quota.limit, quota.reset
                figures.next_at = 0.0
            elif quota.reset == figures.reset:  # answers arrive out of order: the lowest is the latest
                figures.remaining, figures.limit = min(figures.remaining, quota.remaining), quota.limit
        pause = verdict.pause_until
        if verdict.untold:
            pause = now + UNTOLD_PAUSE * 2 ** min(figures.strikes, UNTOLD_DOUBLINGS)
            figures.strikes += 1
        elif not verdict.limited:
            figures.strikes = 0
        if pause is not None:
            figures.paused_until = max(figures.paused_until, pause)
        return pause

    async def paused_until(self, key: str) -> float:
        figures = self._figures.get(key)
        return figures.paused_until if figures is not None else 0.0

    async def close(self) -> None:
        return None


def _content_slot(times: list[float], count: int) -> float:
    """The earliest time a content-creating call fits both windows, given the calls made (sorted)."""
    at = 0.0
    if count >= CONTENT_PER_MINUTE:
        at = max(at, times[count - CONTENT_PER_MINUTE] + 60)
    if count >= CONTENT_PER_HOUR:
        at = max(at, times[count - CONTENT_PER_HOUR] + 3600)
    return at


# The same two steps as LocalLimits, each in one round trip.
# KEYS figures hash, content zset; ARGV now, budget, content 1|0, low share, per minute, per hour, member, ttl,
# margin → the time the call may go
_HOLD_LUA = """
local now, budget, content = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3] == '1'
local low, per_minute, per_hour, margin = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[9])
local s = redis.call('HMGET', KEYS[1], 'paused_until', 'remaining', 'limit', 'reset', 'next_at')
local at = math.max(now, tonumber(s[1]) or 0)
local remaining, limit, reset, next_at = tonumber(s[2]), tonumber(s[3]), tonumber(s[4]) or 0, tonumber(s[5]) or 0
local paced = nil
if remaining and limit and reset > at then
  if remaining <= 0 then
    at = reset + margin
  elseif remaining < limit * low then
    at = math.max(at, next_at)
    paced = at + (reset - at) / remaining
  end
end
if content then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 3600)
  local n = redis.call('ZCARD', KEYS[2])
  if n >= per_minute then
    at = math.max(at, tonumber(redis.call('ZRANGE', KEYS[2], n - per_minute, n - per_minute, 'WITHSCORES')[2]) + 60)
  end
  if n >= per_hour then
    at = math.max(at, tonumber(redis.call('ZRANGE', KEYS[2], n - per_hour, n - per_hour, 'WITHSCORES')[2]) + 3600)
  end
end
if at - now > budget then return string.format('%.17g', at) end
if paced then redis.call('HSET', KEYS[1], 'next_at', string.format('%.17g', paced)) end
if content then
  redis.call('ZADD', KEYS[2], string.format('%.17g', at), ARGV[7])
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[8]))
end
return string.format('%.17g', at)
"""
# KEYS figures hash; ARGV now, remaining, limit, reset ('' unknown), pause until ('' none), untold 1|0,
# limited 1|0, untold pause, doublings, ttl → the pause ('' none)
_OBSERVE_LUA = """
local now, remaining, limit, reset = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if remaining and limit and reset then
  local s = redis.call('HMGET', KEYS[1], 'remaining', 'reset')
  local known, known_reset = tonumber(s[1]), tonumber(s[2]) or 0
  if known == nil or reset > known_reset then
    redis.call('HSET', KEYS[1], 'remaining', remaining, 'limit', limit, 'reset', string.format('%.17g', reset),
               'next_at', 0)
  elseif reset == known_reset then
    redis.call('HSET', KEYS[1], 'remaining', math.min(known, remaining), 'limit', limit)
  end
end
local pause = tonumber(ARGV[5])
if ARGV[6] == '1' then
  local strikes = tonumber(redis.call('HGET', KEYS[1], 'strikes')) or 0
  pause = now + tonumber(ARGV[8]) * 2 ^ math.min(strikes, tonumber(ARGV[9]))
  redis.call('HSET', KEYS[1], 'strikes', strikes + 1)
elseif ARGV[7] == '0' then
  redis.call('HDEL', KEYS[1], 'strikes')
end
if pause then
  local paused = tonumber(redis.call('HGET', KEYS[1], 'paused_until')) or 0
  if pause > paused then redis.call('HSET', KEYS[1], 'paused_until', string.format('%.17g', pause)) end
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[10]))
if pause then return string.format('%.17g', pause) end
return ''
"""


class RedisLimits:
    """The figures in Redis, shared by every process; this process's own while Redis cannot be reached."""

    def __init__(self, url: str, *, prefix: str = GITHUB_PREFIX) -> None:
        self.redis = LoopRedis(url, {"hold": _HOLD_LUA, "observe": _OBSERVE_LUA})
        self.prefix = prefix
        self.fallback = LocalLimits()

    async def hold(self, key: str, now: float, *, content: bool, budget: float) -> float:
        args = [
            repr(now),
            repr(budget),
            int(content),
            LOW_QUOTA,
            CONTENT_PER_MINUTE,
            CONTENT_PER_HOUR,
            uuid.uuid4().hex,
            3600 + 60,
            RESET_MARGIN,
        ]
        try:
            at = await self.redis.script("hold")(keys=[self.prefix + key, f"{self.prefix}{key}:content"], args=args)
        except (RedisError, OSError) as exc:
            log.warning("github.limits_unshared", error=repr(exc))
            return await self.fallback.hold(key, now, content=content, budget=budget)
        return float(at)

    async def observe(self, key: str, now: float, verdict: Verdict) -> float | None:
        quota = verdict.quota
        args = [
            repr(now),
            *((quota.remaining, quota.limit, repr(quota.reset)) if quota is not None else ("", "", "")),
            repr(verdict.pause_until) if verdict.pause_until is not None else "",
            int(verdict.untold),
            int(verdict.limited),
            UNTOLD_PAUSE,
            UNTOLD_DOUBLINGS,
            STATE_TTL,
        ]
        # Kept here too: a pause must hold in this process even if Redis goes away before the retry.
        local = await self.fallback.observe(key, now, verdict)
        try:
            pause = await self.redis.script("observe")(keys=[self.prefix + key], args=args)
        except (RedisError, OSError) as exc:
            log.warning("github.limits_unshared", error=repr(exc))
            return local
        return float(pause) if pause else None

    async def paused_until(self, key: str) -> float:
        local = await self.fallback.paused_until(key)
        try:
            shared = await self.redis.client().hget(self.prefix + key, "paused_until")
        except (RedisError, OSError) as exc:
            log.warning("github.limits_unshared", error=repr(exc))
            return local
        return max(local, float(shared or 0))

    async def close(self) -> None:
        await self.redis.close()


# ---------------------------------------------------------------- the limiter


class Limiter:
    """Holds each call to GitHub's limits, per key (an installation, the token, the App)."""

    def __init__(self, store: LimitStore, *, budget: float, clock: Clock | None = None) -> None:
        self.store = store
        self.budget = budget
        self.clock = clock or SystemClock()

    async def before(self, key: str, request: httpx.Request) -> None:
        """Wait until the call may go, or raise GitHubRateLimited when that is more than the budget away."""
        now = self.clock.now()
        wait = await self.store.hold(key, now, content=creates_content(request), budget=self.budget) - now
        if wait > self.budget:
            log.info("github.deferred", key=key, method=request.method, path=request.url.path, wait_s=round(wait, 1))
            raise GitHubRateLimited(key, wait)
        if wait > 0:
            log.info("github.paced", key=key, method=request.method, path=request.url.path, wait_s=round(wait, 3))
            await self.clock.sleep(wait)

    async def after(self, key: str, response: httpx.Response) -> None:
        if response.status_code == 403 and "retry-after" not in response.headers:
            await response.aread()  # whether it is a rate limit may only be in its message
        now = self.clock.now()
        verdict = read_verdict(response, now)
        pause = await self.store.observe(key, now, verdict)
        if verdict.limited:
            log.warning(
                "github.rate_limited",
                key=key,
                status=response.status_code,
                path=response.request.url.path,
                pause_s=round((pause or now) - now, 1),
            )

    async def paused_for(self, key: str) -> float:
        """Seconds a rate limit still keeps every call of `key` back (0: calls may go now)."""
        return max(await self.store.paused_until(key) - self.clock.now(), 0.0)

    async def close(self) -> None:
        await self.store.close()

    def throttler(self, key: str) -> GitHubThrottler:
        return GitHubThrottler(self, key)

    def event_hooks(self, key: str) -> dict[str, list[Any]]:
        async def after(response: httpx.Response) -> None:
            await self.after(key, response)

        return {"response": [after]}


class GitHubThrottler(BaseThrottler):
    """githubkit's throttler for one client: the limiter first, then githubkit's cap on concurrent calls.

    Sync calls (only a sync caller's token mint, bot/github.py) get the cap alone: everything
    WAOOAW does on GitHub is async.
    """

    def __init__(self, limiter: Limiter, key: str) -> None:
        self.limiter = limiter
        self.key = key
        self._concurrency = LocalThrottler(MAX_CONCURRENT)

    @contextmanager
    def acquire(self, request: httpx.Request) -> Generator[None, Any, Any]:
        with self._concurrency.acquire(request):
            yield

    @asynccontextmanager
    async def async_acquire(self, request: httpx.Request) -> AsyncGenerator[None, Any]:
        await self.limiter.before(self.key, request)
        async with self._concurrency.async_acquire(request):
            yield


def limit_store(redis_url: str | None) -> LimitStore:
    return RedisLimits(redis_url) if redis_url else LocalLimits()
