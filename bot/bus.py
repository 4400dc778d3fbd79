"""The event bus between intake and workers.

Only delivery ids travel on the bus; the inbox table holds the payload and is the
durable record. `LocalBus` serves the embedded default (one process, no Redis);
`RedisStreamBus` serves production (many workers, one stream, one consumer group).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class BusMessage:
    delivery_id: str
    attempt: int = 1  # how many times this delivery has been handed to a worker


# The handler returns when the work is done (the bus then acks); raising means
# "not done", and the bus delivers the message again later, up to max_deliveries.
Handler = Callable[[BusMessage], Awaitable[None]]
# Called once when a message has failed max_deliveries times and goes to the dead letters.
DeadHandler = Callable[[BusMessage, str], Awaitable[None]]


class EventBus(Protocol):
    async def publish(self, delivery_id: str) -> None: ...

    async def consume(self, handler: Handler, on_dead: DeadHandler, stop: asyncio.Event) -> None:
        """Run until `stop` is set, handing each message to `handler`."""
        ...

    async def depth(self) -> int:
        """Messages waiting or in flight."""
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

    async def publish(self, delivery_id: str) -> None:
        self._queue.put_nowait(BusMessage(delivery_id))

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
            except Exception as exc:  # noqa: BLE001 - any failure means "deliver again later"
                await self._retry_or_bury(message, exc, on_dead)
            finally:
                self._in_flight -= 1
                self._queue.task_done()

    async def _retry_or_bury(self, message: BusMessage, exc: Exception, on_dead: DeadHandler) -> None:
        if message.attempt >= self.max_deliveries:
            log.error("bus.dead_letter", delivery=message.delivery_id, attempts=message.attempt, error=repr(exc))
            await on_dead(message, repr(exc))
            return
        delay = self.backoff_base * 2 ** (message.attempt - 1)
        log.warning("bus.retry", delivery=message.delivery_id, attempt=message.attempt, delay=delay, error=repr(exc))
        retry = BusMessage(message.delivery_id, message.attempt + 1)
        task = asyncio.create_task(self._requeue_after(retry, delay))
        self._pending_retries.add(task)
        task.add_done_callback(self._pending_retries.discard)

    async def _requeue_after(self, message: BusMessage, delay: float) -> None:
        await asyncio.sleep(delay)  # backoff before the next attempt, not a poll
        self._queue.put_nowait(message)

    async def depth(self) -> int:
        return self._queue.qsize() + self._in_flight + len(self._pending_retries)

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
