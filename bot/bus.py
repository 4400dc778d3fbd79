"""The event bus between intake and workers.

Only delivery ids travel on the bus; the inbox table holds the payload and is the
durable record. `LocalBus` serves the embedded default (one process, no Redis);
`RedisStreamBus` serves production (many workers, one stream, one consumer group).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import redis.asyncio as aioredis
import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import EncodableT, FieldT

from bot import tracing
from bot.batching import Batcher

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class BusMessage:
    delivery_id: str
    attempt: int = 1  # how many times this delivery has been handed to a worker
    # The publisher's trace context (bot/tracing.py): where it came from, not what it is.
    trace: Mapping[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class BusStats:
    """What the bus holds now, for /metrics."""

    waiting: int  # published, not yet handed to a worker (the consumer group's lag)
    pending: int  # handed to a worker, not yet acked
    dead_letters: int
    oldest_age: float  # seconds since the oldest message waiting or pending was published; 0 when none


# The handler returns when the work is done (the bus then acks); raising means
# "not done", and the bus delivers the message again later, up to max_deliveries.
# Raising Deferred means "not done, not failed": delivered again after its delay, uncounted.
Handler = Callable[[BusMessage], Awaitable[None]]
# Called once when a message has failed max_deliveries times and goes to the dead letters.
DeadHandler = Callable[[BusMessage, str], Awaitable[None]]


class Deferred(Exception):
    """The work could not be done now (GitHub's rate limit): deliver it again after `delay` seconds.

    Not a failure: the delivery keeps its attempt count, so waiting never sends it to the dead letters.
    """

    def __init__(self, delay: float, reason: str) -> None:
        self.delay = max(delay, 0.0)
        super().__init__(f"deferred {self.delay:.0f} s: {reason}")


class EventBus(Protocol):
    async def publish(self, delivery_id: str) -> None: ...

    async def consume(self, handler: Handler, on_dead: DeadHandler, stop: asyncio.Event) -> None:
        """Run until `stop` is set, handing each message to `handler`."""
        ...

    async def depth(self) -> int:
        """Messages waiting or in flight."""
        ...

    async def stats(self) -> BusStats: ...

    async def queued_ids(self) -> set[str]:
        """Delivery ids on the bus now, waiting or in flight."""
        ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


class LocalBus:
    """An in-process queue for the embedded default.

    It keeps nothing itself: the inbox table is the durable record, and the
    worker re-queues unfinished deliveries from it when the process starts.
    Failures are retried with exponential backoff inside the process.
    """

    def __init__(self, *, max_deliveries: int = 5, backoff_base: float = 0.5, concurrency: int = 4) -> None:
        self.max_deliveries = max_deliveries
        self.backoff_base = backoff_base
        self.concurrency = concurrency
        self._queue: asyncio.Queue[BusMessage] = asyncio.Queue()
        self._in_flight = 0
        self._pending_retries: set[asyncio.Task[None]] = set()
        self._dead = 0

    async def publish(self, delivery_id: str) -> None:
        self._queue.put_nowait(BusMessage(delivery_id, trace=tracing.carrier()))

    async def consume(self, handler: Handler, on_dead: DeadHandler, stop: asyncio.Event) -> None:
        consumers = [asyncio.create_task(self._consume_one(handler, on_dead, stop)) for _ in range(self.concurrency)]
        await stop.wait()
        for task in consumers + list(self._pending_retries):
            task.cancel()
        await asyncio.gather(*consumers, *self._pending_retries, return_exceptions=True)

    async def _consume_one(self, handler: Handler, on_dead: DeadHandler, stop: asyncio.Event) -> None:
        while not stop.is_set():
            message = await self._queue.get()
            self._in_flight += 1
            try:
                await handler(message)
            except Deferred as deferred:
                log.info("bus.deferred", delivery=message.delivery_id, attempt=message.attempt, delay=deferred.delay)
                self._requeue_later(message, deferred.delay)
            except Exception as exc:  # noqa: BLE001 - any failure means "deliver again later"
                await self._retry_or_bury(message, exc, on_dead)
            finally:
                self._in_flight -= 1
                self._queue.task_done()

    async def _retry_or_bury(self, message: BusMessage, exc: Exception, on_dead: DeadHandler) -> None:
        if message.attempt >= self.max_deliveries:
            log.error("bus.dead_letter", delivery=message.delivery_id, attempts=message.attempt, error=repr(exc))
            self._dead += 1
            await on_dead(message, repr(exc))
            return
        delay = self.backoff_base * 2 ** (message.attempt - 1)
        log.warning("bus.retry", delivery=message.delivery_id, attempt=message.attempt, delay=delay, error=repr(exc))
        self._requeue_later(BusMessage(message.delivery_id, message.attempt + 1, message.trace), delay)

    def _requeue_later(self, message: BusMessage, delay: float) -> None:
        task = asyncio.create_task(self._requeue_after(message, delay))
        self._pending_retries.add(task)
        task.add_done_callback(self._pending_retries.discard)

    async def _requeue_after(self, message: BusMessage, delay: float) -> None:
        await asyncio.sleep(delay)  # backoff before the next attempt, not a poll
        self._queue.put_nowait(message)

    async def depth(self) -> int:
        return self._queue.qsize() + self._in_flight + len(self._pending_retries)

    async def stats(self) -> BusStats:
        # Nothing here outlives the process, so no message's age is worth a scrape.
        waiting = self._queue.qsize() + len(self._pending_retries)
        return BusStats(waiting=waiting, pending=self._in_flight, dead_letters=self._dead, oldest_age=0.0)

    async def queued_ids(self) -> set[str]:
        # Retries sleeping in _requeue_after are not visible here; recovery runs at start, before any.
        return {message.delivery_id for message in list(self._queue._queue)}  # type: ignore[attr-defined]  # Queue's own deque: a snapshot

    async def join(self) -> None:
        """Wait until everything published so far (and its retries) is handled."""
        while True:
            await self._queue.join()
            if not self._pending_retries:
                return
            await asyncio.gather(*list(self._pending_retries), return_exceptions=True)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None


# --------------------------------------------------------------------------- Redis

# Renew our claim on an entry only if we still own it: XCLAIM ... JUSTID resets
# the idle time without counting a delivery, and checking the owner in the same
# script keeps us from stealing back an entry another worker has reclaimed.
_HEARTBEAT_LUA = """
local owned = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2])
if #owned == 0 then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1
"""

_DEAD_LETTER_MAXLEN = 10_000  # dead letters are for inspection; keep the newest, trimmed approximately
_RECLAIM_BATCH = 10  # entries reclaimed (one at a time) in a turn before new ones get theirs
# (entry id, fields) as the client reads them: decode_responses=True, which redis-py's annotations cannot follow
_Entries = list[tuple[str, dict[str, str]]]
_REDIS_ERROR_BACKOFF_MAX = 5.0
# How long past its own wait a reply may take before the connection counts as broken.
_REPLY_MARGIN = 5.0


def _default_consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class _Entry:
    entry_id: str
    delivery_id: str | None  # None: an entry without our field (not written by publish)
    attempt: int
    trace: Mapping[str, str] = field(default_factory=dict)


def _entry(entry_id: str, fields: dict[str, str] | None, attempt: int) -> _Entry:
    fields = fields or {}
    trace = {name: value for name, value in fields.items() if name != "delivery"}
    return _Entry(entry_id, fields.get("delivery"), attempt, trace)


class RedisStreamBus:
    """Redis Streams with one consumer group shared by every worker, on any machine.

    All state lives in Redis: the stream (entries waiting or in flight), the group's
    pending list (who holds what, how often it was delivered), `{stream}:errors`
    (the last error of an entry left pending) and `{stream}:dead` (dead letters).
    An entry is acked and deleted in one transaction once handled, so the stream
    only ever holds work that is waiting or in flight and does not grow forever.
    """

    def __init__(
        self,
        url: str,
        *,
        stream: str = "waooaw:events",
        group: str = "waooaw-workers",
        consumer: str | None = None,
        visibility_timeout: float = 60.0,
        max_deliveries: int = 5,
        block_ms: int = 5000,
        backoff_base: float = 0.2,
        in_process_retries: int = 2,
        concurrency: int = 1,
    ) -> None:
        self.stream = stream
        self.group = group
        self.consumer = consumer or _default_consumer_name()
        self.dead_stream = f"{stream}:dead"
        self.errors_key = f"{stream}:errors"
        self.visibility_timeout = visibility_timeout
        self.max_deliveries = max_deliveries
        self.block_ms = block_ms
        self.backoff_base = backoff_base
        self.in_process_retries = in_process_retries
        self.concurrency = max(1, concurrency)
        # decode_responses: ids and fields come back as str; the connect timeout keeps
        # ping() and readiness checks from hanging on an unreachable host. The read timeout
        # outlasts the blocking read: redis-py 8's default (5 s) equals the default block, so
        # every idle read failed as a timeout and the consumer backed off up to 5 s before
        # reading again, however soon the next delivery came.
        self._redis: aioredis.Redis = aioredis.Redis.from_url(
            url, decode_responses=True, socket_connect_timeout=5, socket_timeout=block_ms / 1000 + _REPLY_MARGIN
        )
        self._heartbeat = self._redis.register_script(_HEARTBEAT_LUA)
        self._group_ready = False  # only saves a round trip; NOGROUP resets it
        # Publishes arriving together (intake under load) share one pipelined round trip.
        self._publisher: Batcher[tuple[str, dict[str, str]], None] = Batcher(self._xadd_many)

    # ------------------------------------------------------------------ publish

    async def publish(self, delivery_id: str) -> None:
        # The trace context is taken here: the batch is written from another task.
        await self._publisher.submit((delivery_id, tracing.carrier()))

    async def _xadd_many(self, messages: list[tuple[str, dict[str, str]]]) -> list[None]:
        # The group must exist before the first entry is counted by depth(); it is
        # created from id 0, so entries added before it are still delivered.
        await self._ensure_group()
        async with self._redis.pipeline(transaction=False) as pipe:
            for delivery_id, trace in messages:
                fields: dict[FieldT, EncodableT] = {key: value for key, value in trace.items()}  # typed for xadd
                fields["delivery"] = delivery_id
                pipe.xadd(self.stream, fields)
            await pipe.execute()
        return [None] * len(messages)

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            await self._redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    # ------------------------------------------------------------------ consume

    async def consume(self, handler: Handler, on_dead: DeadHandler, stop: asyncio.Event) -> None:
        names = [self.consumer] if self.concurrency == 1 else [f"{self.consumer}-{i}" for i in range(self.concurrency)]
        tasks = [asyncio.create_task(self._consume_as(name, handler, on_dead, stop)) for name in names]
        try:
            await asyncio.gather(*tasks)
        finally:
            # If one consumer fails (or consume is cancelled) the others stop too.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _consume_as(self, consumer: str, handler: Handler, on_dead: DeadHandler, stop: asyncio.Event) -> None:
        log.info("bus.consumer_started", stream=self.stream, group=self.group, consumer=consumer)
        cursor = "0-0"  # where XAUTOCLAIM resumes its scan of the pending list
        failures = 0
        while not stop.is_set():
            try:
                cursor = await self._turn(consumer, cursor, handler, on_dead, stop)
                failures = 0
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                failures += 1
                await self._wait_after_redis_error(consumer, exc, failures, stop)
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                # The stream or group was deleted under us: create it again next turn.
                self._group_ready = False
        await self._retire(consumer)
        log.info("bus.consumer_stopped", consumer=consumer)

    async def _turn(
        self, consumer: str, cursor: str, handler: Handler, on_dead: DeadHandler, stop: asyncio.Event
    ) -> str:
        """Reclaim what dead consumers left behind, then block for new entries."""
        await self._ensure_group()
        reclaimed = 0
        while reclaimed < _RECLAIM_BATCH and not stop.is_set():
            cursor, entry = await self._reclaim(consumer, cursor)
            if entry is None:
                break
            await self._process(consumer, entry, handler, on_dead)
            reclaimed += 1
        if stop.is_set():
            return cursor
        # Having reclaimed, more may be due (deferred deliveries come back together): no wait for new ones.
        for entry in await self._read_new(consumer, block=not reclaimed):
            await self._process(consumer, entry, handler, on_dead)
        return cursor

    async def _wait_after_redis_error(
        self, consumer: str, exc: BaseException, failures: int, stop: asyncio.Event
    ) -> None:
        delay = min(self.backoff_base * 2 ** (failures - 1), _REDIS_ERROR_BACKOFF_MAX)
        log.warning("bus.redis_error", consumer=consumer, error=repr(exc), retry_in=delay)
        try:
            await asyncio.wait_for(stop.wait(), timeout=delay)  # backoff that still ends at once on stop
        except TimeoutError:
            pass

    async def _reclaim(self, consumer: str, cursor: str) -> tuple[str, _Entry | None]:
        # One entry at a time, handled at once (COUNT 1, as for new entries): a claim counts a
        # delivery (XAUTOCLAIM without JUSTID), and an entry claimed to wait behind a slow handler
        # would age unheartbeated until another consumer claimed it again, counting once more,
        # so that it could reach the dead letters without its handler ever failing.
        min_idle_ms = int(self.visibility_timeout * 1000)
        reply = await self._redis.xautoclaim(
            self.stream, self.group, consumer, min_idle_time=min_idle_ms, start_id=cursor, count=1
        )
        next_cursor, claimed = reply[0], reply[1]
        for entry_id, fields in claimed:
            attempt = await self._delivery_count(entry_id)
            if attempt is not None:  # None: acked by someone else in between
                log.info("bus.reclaimed", consumer=consumer, entry=entry_id, attempt=attempt)
                return next_cursor, _entry(entry_id, fields, attempt)
        return next_cursor, None

    async def _read_new(self, consumer: str, *, block: bool = True) -> list[_Entry]:
        # COUNT 1: an entry read but not yet started would age in our pending list
        # while we work on another, and be reclaimed by someone else.
        reply = cast(
            list[tuple[str, _Entries]] | None,
            await self._redis.xreadgroup(
                self.group, consumer, {self.stream: ">"}, count=1, block=self.block_ms if block else None
            ),
        )
        entries: list[_Entry] = []
        for _stream, messages in reply or []:
            for entry_id, fields in messages:
                # ">" only hands out entries never delivered before: their delivery count is 1.
                entries.append(_entry(entry_id, fields, 1))
        return entries

    async def _delivery_count(self, entry_id: str) -> int | None:
        pending = await self._redis.xpending_range(self.stream, self.group, min=entry_id, max=entry_id, count=1)
        return int(pending[0]["times_delivered"]) if pending else None

    # ------------------------------------------------------------------ one entry

    async def _process(self, consumer: str, entry: _Entry, handler: Handler, on_dead: DeadHandler) -> None:
        if entry.delivery_id is None:
            log.error("bus.malformed_entry", entry=entry.entry_id)
            await self._ack(entry.entry_id)
            return
        message = BusMessage(entry.delivery_id, entry.attempt, entry.trace)
        if entry.attempt > self.max_deliveries:
            # Its last delivery died with its consumer: do not run it again.
            reason = (
                cast(str | None, await self._redis.hget(self.errors_key, entry.entry_id)) or "exceeded max deliveries"
            )
            await self._bury(entry.entry_id, message, reason, on_dead)
            return
        error = await self._run_handler(consumer, entry.entry_id, message, handler)
        if error is None:
            await self._ack(entry.entry_id)
        elif isinstance(error, Deferred):
            await self._defer(consumer, entry, message, error.delay)
        elif entry.attempt >= self.max_deliveries:
            await self._bury(entry.entry_id, message, error, on_dead)
        else:
            await self._leave_pending(entry.entry_id, message, error)

    async def _run_handler(
        self, consumer: str, entry_id: str, message: BusMessage, handler: Handler
    ) -> str | Deferred | None:
        """Run the handler with in-process retries; return the last error, the deferral, or None on success."""
        heartbeat = asyncio.create_task(self._keep_claimed(consumer, entry_id))
        try:
            return await self._attempts(message, handler)
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)

    async def _attempts(self, message: BusMessage, handler: Handler) -> str | Deferred | None:
        error: str | None = None
        for retry in range(self.in_process_retries + 1):
            if retry:
                await asyncio.sleep(self.backoff_base * 2 ** (retry - 1))  # backoff before trying again
            try:
                await handler(message)
                return None
            except Deferred as deferred:
                return deferred  # trying again at once would be refused again
            except Exception as exc:  # noqa: BLE001 - any failure means "not done"
                error = repr(exc)
                log.warning(
                    "bus.handler_failed",
                    delivery=message.delivery_id,
                    attempt=message.attempt,
                    retry=retry,
                    error=error,
                )
        return error

    async def _keep_claimed(self, consumer: str, entry_id: str) -> None:
        """While the handler runs, keep the entry from looking abandoned to other workers."""
        interval = max(self.visibility_timeout / 3, 0.05)
        while True:
            await asyncio.sleep(interval)  # a heartbeat period, not a poll for work
            try:
                owned = await self._heartbeat(keys=[self.stream], args=[self.group, consumer, entry_id])
            except (RedisError, OSError) as exc:
                log.warning("bus.heartbeat_failed", entry=entry_id, error=repr(exc))
                continue
            if not owned:
                log.warning("bus.lost_claim", entry=entry_id, consumer=consumer)
                return

    async def _ack(self, entry_id: str) -> None:
        # Ack and delete together: handled entries leave the stream, so it holds
        # only waiting and in-flight work.
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, self.group, entry_id)
            pipe.xdel(self.stream, entry_id)
            pipe.hdel(self.errors_key, entry_id)
            await pipe.execute()

    async def _leave_pending(self, entry_id: str, message: BusMessage, error: str) -> None:
        # Not acked: after visibility_timeout any worker reclaims it. The error is kept
        # in Redis so whichever worker buries it later can say why.
        await self._redis.hset(self.errors_key, entry_id, error)
        log.warning(
            "bus.left_pending", delivery=message.delivery_id, attempt=message.attempt, entry=entry_id, error=error
        )

    async def _defer(self, consumer: str, entry: _Entry, message: BusMessage, delay: float) -> None:
        # Left pending, but made to look idle for (visibility timeout - delay), so any worker
        # reclaims it after `delay` (Redis cannot date a claim in the future: a longer delay is
        # the visibility timeout, and the limiter defers it again at no cost until then). Its
        # delivery count is set back one, so the reclaim does not count as another delivery.
        idle_ms = max(int((self.visibility_timeout - delay) * 1000), 0)
        await self._redis.xclaim(
            self.stream,
            self.group,
            consumer,
            min_idle_time=0,
            message_ids=[entry.entry_id],
            idle=idle_ms,
            retrycount=entry.attempt - 1,
            justid=True,
        )
        log.info(
            "bus.deferred",
            delivery=message.delivery_id,
            attempt=message.attempt,
            entry=entry.entry_id,
            delay=round(delay, 1),
        )

    async def _bury(self, entry_id: str, message: BusMessage, reason: str, on_dead: DeadHandler) -> None:
        fields: dict[FieldT, EncodableT] = {
            "delivery": message.delivery_id,
            "attempts": str(message.attempt),
            "error": reason,
            "entry": entry_id,
        }
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self.dead_stream, fields, maxlen=_DEAD_LETTER_MAXLEN, approximate=True)
            pipe.xack(self.stream, self.group, entry_id)
            pipe.xdel(self.stream, entry_id)
            pipe.hdel(self.errors_key, entry_id)
            await pipe.execute()
        log.error("bus.dead_letter", delivery=message.delivery_id, attempts=message.attempt, error=reason)
        try:
            await on_dead(message, reason)
        except Exception as exc:  # noqa: BLE001 - the dead letter is recorded; do not stop consuming
            log.error("bus.on_dead_failed", delivery=message.delivery_id, error=repr(exc))

    async def _retire(self, consumer: str) -> None:
        """On a clean stop, drop our consumer name from the group if it holds nothing."""
        try:
            held = await self._redis.xpending_range(
                self.stream, self.group, min="-", max="+", count=1, consumername=consumer
            )
            if not held:  # deleting a consumer that holds entries would lose them
                await self._redis.xgroup_delconsumer(self.stream, self.group, consumer)
        except (RedisError, OSError) as exc:
            log.warning("bus.retire_failed", consumer=consumer, error=repr(exc))

    # ------------------------------------------------------------------ inspection

    async def depth(self) -> int:
        try:
            groups = await self._redis.xinfo_groups(self.stream)
        except ResponseError:  # no such key: nothing was ever published
            return 0
        group = next((g for g in groups if g.get("name") == self.group), None)
        if group is None:
            return 0
        pending = int(group.get("pending") or 0)
        lag = group.get("lag")
        if lag is None:
            # Redis cannot tell the lag when deleted entries lie in its range. Since
            # every handled entry is deleted, the stream holds exactly the pending
            # entries plus those not yet read.
            lag = max(int(await self._redis.xlen(self.stream)) - pending, 0)
        return int(lag) + pending

    async def stats(self) -> BusStats:
        depth = await self.depth()
        pending = 0
        try:
            groups = await self._redis.xinfo_groups(self.stream)
            pending = next((int(g.get("pending") or 0) for g in groups if g.get("name") == self.group), 0)
            oldest = await self._redis.xrange(self.stream, min="-", max="+", count=1)
        except ResponseError:  # no such key: nothing was ever published
            oldest = []
        dead = int(await self._redis.xlen(self.dead_stream))
        # Handled entries are deleted, so the first one left is the oldest waiting or pending; its id is its time.
        oldest_id = cast(str, oldest[0][0]) if oldest else None  # the client decodes replies to str
        age = max(time.time() - int(oldest_id.split("-")[0]) / 1000, 0.0) if oldest_id else 0.0
        return BusStats(waiting=depth - pending, pending=pending, dead_letters=dead, oldest_age=age)

    async def queued_ids(self) -> set[str]:
        # Handled entries are deleted, so the stream holds only what waits or is in flight: small.
        try:
            entries = cast(_Entries, await self._redis.xrange(self.stream, min="-", max="+"))
        except ResponseError:
            return set()
        return {fields["delivery"] for _entry_id, fields in entries if "delivery" in fields}

    async def dead_letters(self) -> list[dict[str, Any]]:
        """The dead letters, oldest first: id, delivery, attempts, error, entry."""
        entries = cast(_Entries, await self._redis.xrange(self.dead_stream, min="-", max="+"))
        return [_dead_letter(entry_id, fields) for entry_id, fields in entries]

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except Exception as exc:  # noqa: BLE001 - readiness must answer, never raise
            log.warning("bus.ping_failed", error=repr(exc))
            return False

    async def close(self) -> None:
        await self._publisher.close()
        await self._redis.aclose()


def _dead_letter(entry_id: str, fields: dict[str, str]) -> dict[str, Any]:
    letter: dict[str, Any] = {"id": entry_id, **fields}
    if "attempts" in letter:
        letter["attempts"] = int(letter["attempts"])
    return letter
