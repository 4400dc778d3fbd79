"""The LLM client's circuit breaker, its state shared through Redis so that every process sees it.

closed → (`threshold` calls failing in a row, in any process) → open: calls fail fast for
`cooldown` seconds → half-open: one trial call goes out, from one process — its success
closes the breaker, its failure opens it again. A call the API answered (even with a
refusal) counts as a success: the API is up.

Where the state lives: with Redis, the hash `waooaw:llm:breaker` (failures in a row, when it
opened) and the key `waooaw:llm:breaker:trial`, taken with SET NX by the process that makes
the trial and expiring after a cool-down, so a process that dies mid-trial does not hold
the breaker half-open for ever; a failure is counted and the breaker opened in one Lua
script. Without Redis the same state lives in the process. Times are wall-clock seconds,
which processes share. If Redis cannot be reached the breaker lets calls through and says
so in the log: it protects the API from us, it must not stop us on its own.

Each opening — from closed, or by a failed trial — is a trip, reported once, by the process
whose failure opened it, to `on_trip` (the app writes it to the store, table
`llm_breaker_trips`, for the daily report: `record_trip`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from agents.store.db import Store
from agents.store.tables import BreakerTrip

log = structlog.get_logger(__name__)

REDIS_KEY = "waooaw:llm:breaker"
State = Literal["closed", "open", "half_open"]
TripKind = Literal["opened", "trial_failed"]


@dataclass(frozen=True)
class Trip:
    """The breaker opened: after `failures` calls failing in a row, or a failed trial."""

    at: datetime
    kind: TripKind
    failures: int
    cooldown: float


class BreakerState(Protocol):
    """Where the breaker's state lives; each method is one atomic step."""

    async def read(self) -> tuple[int, float | None]:
        """Failures in a row, and when the breaker opened (None: closed)."""
        ...

    async def take_trial(self, hold: float) -> bool:
        """Whether this caller may make the one trial call (held at most `hold` seconds)."""
        ...

    async def release_trial(self) -> None: ...

    async def fail(self, now: float, threshold: int, trial: bool) -> tuple[int, TripKind | None]:
        """Count a failure (of the trial call, if `trial`); open the breaker at `threshold`
        or on a failed trial. Returns the failures in a row and the trip, if this opened it."""
        ...

    async def reset(self) -> bool:
        """Close the breaker; whether it was open."""
        ...

    async def aclose(self) -> None: ...


class MemoryBreakerState:
    """The state in this process (no Redis)."""

    def __init__(self) -> None:
        self.failures = 0
        self.opened_at: float | None = None
        self.trial = False

    async def read(self) -> tuple[int, float | None]:
        return self.failures, self.opened_at

    async def take_trial(self, hold: float) -> bool:
        if self.trial:
            return False
        self.trial = True
        return True

    async def release_trial(self) -> None:
        self.trial = False

    async def fail(self, now: float, threshold: int, trial: bool) -> tuple[int, TripKind | None]:
        self.failures += 1
        trip: TripKind | None = None
        if trial or self.failures >= threshold:
            trip = "opened" if self.opened_at is None else "trial_failed" if trial else None
            self.opened_at = now
        if trial:
            self.trial = False
        return self.failures, trip

    async def reset(self) -> bool:
        was_open = self.opened_at is not None
        self.failures, self.opened_at, self.trial = 0, None, False
        return was_open

    async def aclose(self) -> None:
        return None


# KEYS: the hash, the trial key. ARGV: now, threshold, 1 if the failed call was the trial.
_FAIL = """
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local trial = ARGV[3] == '1'
if trial then redis.call('DEL', KEYS[2]) end
local opened = redis.call('HGET', KEYS[1], 'opened_at')
local trip = ''
if trial or failures >= tonumber(ARGV[2]) then
  if not opened then trip = 'opened' elseif trial then trip = 'trial_failed' end
  redis.call('HSET', KEYS[1], 'opened_at', ARGV[1])
end
return {failures, trip}
"""


class RedisBreakerState:
    """The state in Redis: every process with the same Redis and key shares one breaker."""

    def __init__(self, client: aioredis.Redis, key: str = REDIS_KEY) -> None:
        self.client = client
        self.key = key
        self.trial_key = f"{key}:trial"
        self._fail = client.register_script(_FAIL)

    @classmethod
    def from_url(cls, url: str, key: str = REDIS_KEY) -> RedisBreakerState:
        return cls(aioredis.Redis.from_url(url), key)

    async def read(self) -> tuple[int, float | None]:
        failures, opened_at = await self.client.hmget(self.key, ["failures", "opened_at"])
        return int(failures or 0), float(opened_at) if opened_at is not None else None

    async def take_trial(self, hold: float) -> bool:
        return bool(await self.client.set(self.trial_key, "1", nx=True, px=max(1, int(hold * 1000))))

    async def release_trial(self) -> None:
        await self.client.delete(self.trial_key)

    async def fail(self, now: float, threshold: int, trial: bool) -> tuple[int, TripKind | None]:
        failures, trip = await self._fail(keys=[self.key, self.trial_key], args=[repr(now), threshold, int(trial)])
        kind = trip.decode() if isinstance(trip, bytes) else trip
        return int(failures), kind or None  # type: ignore[return-value]  # _FAIL answers a TripKind or nil

    async def reset(self) -> bool:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hget(self.key, "opened_at")
            pipe.delete(self.key, self.trial_key)
            opened_at, _ = await pipe.execute()
        return opened_at is not None

    async def aclose(self) -> None:
        await self.client.aclose()


class CircuitBreaker:
    """closed → (threshold failed calls in a row) → open → (cooldown) → half-open: one trial call."""

    def __init__(
        self,
        threshold: int = 5,
        cooldown: float = 60.0,
        clock: Callable[[], float] = time.time,
        *,
        state: BreakerState | None = None,
        on_trip: Callable[[Trip], Awaitable[None]] | None = None,
    ) -> None:
        if threshold < 1:
            raise ValueError("a breaker needs a threshold of at least 1")
        self.threshold = threshold
        self.cooldown = cooldown
        self.clock = clock
        self.shared = state if state is not None else MemoryBreakerState()
        self.on_trip = on_trip
        self._trial_held = False  # this instance is making the trial call

    async def state(self) -> State:
        _, opened_at = await self.shared.read()
        if opened_at is None:
            return "closed"
        return "open" if self.clock() - opened_at < self.cooldown else "half_open"

    async def admit(self) -> str | None:
        """Why a call may not go out now, or None when it may (in half-open: the one trial)."""
        try:
            failures, opened_at = await self.shared.read()
            if opened_at is None:
                return None
            waited = self.clock() - opened_at
            if waited < self.cooldown:
                return (
                    f"the Anthropic API failed {failures} calls in a row; calls are held "
                    f"{self.cooldown - waited:.0f} s more"
                )
            if await self.shared.take_trial(self.cooldown):
                self._trial_held = True
                return None
        except RedisError as exc:
            log.warning("llm_breaker_unreachable", error=repr(exc))
            return None
        return "the Anthropic API is on trial after failing: one trial call is under way"

    async def succeeded(self) -> None:
        self._trial_held = False
        try:
            if await self.shared.reset():
                log.info("llm_breaker_closed")
        except RedisError as exc:
            log.warning("llm_breaker_unreachable", error=repr(exc))

    async def failed(self) -> None:
        trial, self._trial_held = self._trial_held, False
        try:
            failures, trip = await self.shared.fail(self.clock(), self.threshold, trial)
        except RedisError as exc:
            log.warning("llm_breaker_unreachable", error=repr(exc))
            return
        if trip is None:
            return
        log.warning("llm_breaker_opened", failures=failures, cooldown=self.cooldown, kind=trip)
        if self.on_trip is not None:
            try:
                await self.on_trip(Trip(datetime.now(UTC), trip, failures, self.cooldown))
            except Exception as exc:  # noqa: BLE001 — a trip we could not record still opened the breaker
                log.warning("llm_breaker_trip_unrecorded", error=repr(exc))

    async def aclose(self) -> None:
        await self.shared.aclose()

    async def abandoned(self) -> None:
        """The call ended with neither answer nor failure (cancelled): free the trial slot."""
        if self._trial_held:
            self._trial_held = False
            try:
                await self.shared.release_trial()
            except RedisError as exc:
                log.warning("llm_breaker_unreachable", error=repr(exc))


def trip_recorder(store: Store) -> Callable[[Trip], Awaitable[None]]:
    """`on_trip` for a breaker: each trip becomes a row of `llm_breaker_trips`."""

    async def record(trip: Trip) -> None:
        await asyncio.to_thread(record_trip, store, trip)

    return record


def record_trip(store: Store, trip: Trip) -> None:
    with store.session() as session:
        session.add(BreakerTrip(opened_at=trip.at, kind=trip.kind, failures=trip.failures, cooldown_s=trip.cooldown))
