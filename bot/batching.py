"""Group commit: callers that arrive while one flush runs share the next flush.

Under load one round trip (a database commit, a Redis pipeline) carries many items
instead of one each; a lone caller on a quiet server is flushed at once, so nothing
waits for a timer. Every caller still waits for its own item to be flushed.

A flush answers each item, or fails them all by raising; an answer that is an
exception fails that item's caller alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    def __init__(self, flush: Callable[[list[T]], Awaitable[Sequence[R | Exception]]], *, max_batch: int = 200) -> None:
        self._flush = flush
        self.max_batch = max_batch
        self._queue: asyncio.Queue[tuple[T, asyncio.Future[R]]] | None = None
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """The flush's answer for this item; raises what the flush raised."""
        if self._task is None or self._task.done():
            # Bound to the running loop on first use (the app's lifespan, a CLI's asyncio.run).
            self._queue = asyncio.Queue()
            self._task = asyncio.create_task(self._run(self._queue))
        assert self._queue is not None
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, future))
        return await future

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self, queue: asyncio.Queue[tuple[T, asyncio.Future[R]]]) -> None:
        while True:
            batch = [await queue.get()]
            while len(batch) < self.max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                answers = await self._flush([item for item, _ in batch])
            except Exception as exc:  # noqa: BLE001 - every waiting caller learns its item failed
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), answer in zip(batch, answers, strict=True):
                if future.done():
                    continue
                if isinstance(answer, Exception):
                    future.set_exception(answer)
                else:
                    future.set_result(answer)
