"""Reading a request's body capped in size (`capped_chunks`, for webhooks and the Context API); and a webhook's,
bounded two more ways: its time, and the bytes all bodies hold at once.

The signature covers the whole body, so a body is read whole before anyone knows whether
GitHub sent it. Without a bound across requests, unsigned bodies arriving together could
fill the memory before each got its 401; without a deadline, a body sent a byte at a time
would hold its request open for ever. GitHub sends at most 25 MB and gives up on an answer
after 10 s, so neither bound refuses anything GitHub sends to a server that keeps up.

A body that would pass the cap is refused at once (503, Retry-After) rather than made to
wait: the bytes in flight belong to bodies still arriving, which can take up to the read
timeout, and a delivery waiting that long has already failed on GitHub's side.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from starlette.requests import ClientDisconnect, Request

from bot import webhooks
from bot.settings import WEBHOOK_BODY_MAX_BYTES


async def capped_chunks(request: Request, cap: int, too_large: Callable[[], Exception]) -> AsyncIterator[bytes]:
    """The body's chunks as they arrive; `too_large()` is raised once it passes `cap` bytes, as its
    Content-Length declares (before a byte is read) or as read (Content-Length may be absent)."""
    declared = webhooks.declared_size(request.headers.get("content-length"))
    if declared is not None and declared > cap:
        raise too_large()
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise too_large()
        yield chunk


class BodyBudget:
    """Bytes of webhook bodies held in memory now, across requests, under a cap.

    Used from the one event loop that serves the requests, so taking and giving back need no lock.
    """

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.held = 0
        self.peak = 0  # the most ever held at once, to compare with the cap

    def ensure_room(self, size: int) -> None:
        if self.held + size > self.cap:
            raise webhooks.unavailable(
                f"too many webhook bytes arriving at once (over {self.cap}): the delivery was not recorded; "
                "send it again in a moment"
            )

    def take(self, size: int) -> None:
        self.ensure_room(size)
        self.held += size
        self.peak = max(self.peak, self.held)

    def give_back(self, size: int) -> None:
        self.held -= size


@asynccontextmanager
async def read_body(request: Request, budget: BodyBudget, *, timeout: float) -> AsyncIterator[bytes]:
    """The whole body, counted against the budget until the block ends.

    Refused with a WebhookRejected: 413 over WEBHOOK_BODY_MAX_BYTES (as declared, or as read, since
    Content-Length may be absent); 503 when the budget cannot take it (a declared size is
    checked before a byte is read); 408 when it is not all there within `timeout` seconds.
    """
    content_length = request.headers.get("content-length")
    webhooks.check_body_size(content_length)
    budget.ensure_room(webhooks.declared_size(content_length) or 0)
    held = 0
    try:
        parts = []
        try:
            async with asyncio.timeout(timeout):
                async for chunk in capped_chunks(request, WEBHOOK_BODY_MAX_BYTES, webhooks.too_large):
                    budget.take(len(chunk))
                    held += len(chunk)
                    parts.append(chunk)
        except TimeoutError:
            # Closing the connection stops the sender from trickling the rest into it.
            raise webhooks.WebhookRejected(
                408, f"the body did not arrive within {timeout:g} s", headers={"Connection": "close"}
            ) from None
        except ClientDisconnect:
            raise webhooks.WebhookRejected(400, "the connection closed before the body was complete") from None
        body = b"".join(parts)
        del parts  # the body alone is held from here
        yield body
    finally:
        budget.give_back(held)
