"""Webhook bodies read with a deadline and a cap on bytes held across requests (bot/bodies.py),
driven over raw sockets against the app on a real uvicorn server on loopback."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from agents.store.tables import InboxRecord
from bot.app import create_app
from bot.settings import WEBHOOK_BODY_MAX_BYTES
from tests.conftest import TEST_SECRET, fixture_path
from tests.context_api_support import live_server
from tests.helpers import make_platform, make_settings, signed_headers

RESPONSE_WAIT = 30.0  # seconds: a bound on waiting for an answer the app must give, never a pace


def request_head(url: str, body_size: int, headers: dict[str, str]) -> bytes:
    lines = ["POST /webhooks/github HTTP/1.1", f"Host: {urlsplit(url).netloc}", f"Content-Length: {body_size}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def status_of(status_line: bytes) -> int:
    return int(status_line.split()[1])


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    status = status_of(await reader.readline())
    headers = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers


async def connect(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    parts = urlsplit(url)
    return await asyncio.open_connection(parts.hostname, parts.port)


async def trickle(url: str, body: bytes) -> int | None:
    """Send the body a byte at a time, each after waiting a moment for an answer; the status, if one came."""
    reader, writer = await connect(url)
    writer.write(request_head(url, len(body), signed_headers(body, "issue_comment", "slow-1")))
    try:
        for byte in body[:200]:
            writer.write(bytes([byte]))
            await writer.drain()
            try:  # a cancelled readline consumes nothing
                return status_of(await asyncio.wait_for(reader.readline(), 0.05))
            except TimeoutError:
                continue
        return None
    finally:
        writer.close()


def test_a_body_trickled_slower_than_the_read_timeout_is_cut_off_with_408(sqlite_store):
    platform = make_platform(sqlite_store, settings=make_settings(WAOOAW_WEBHOOK_READ_TIMEOUT=0.3))
    body = fixture_path("issue_comment/created.payload.json").read_bytes()
    assert len(body) > 200  # it never arrives whole
    with live_server(create_app(platform, secret=TEST_SECRET, run_worker=False)) as url:
        assert asyncio.run(trickle(url, body)) == 408
    with sqlite_store.session() as session:
        assert session.get(InboxRecord, "slow-1") is None
    assert platform.body_budget.held == 0


async def unsigned_bodies_together(url: str, senders: int, size: int) -> list[tuple[int, dict[str, str]]]:
    """`senders` connections each send all but the last byte of a `size`-byte body with a wrong
    signature; the last bytes go only once the app has answered one of them: so, until then,
    nothing the app reads can complete, and everything sent must be held or refused."""
    body = memoryview(b"{" + b" " * (size - 2) + b"}")
    headers = {
        "X-GitHub-Event": "push",
        "X-Hub-Signature-256": "sha256=" + "0" * 64,
        "Content-Type": "application/json",
    }
    first_answer = asyncio.Event()

    async def send(number: int) -> tuple[int, dict[str, str]]:
        reader, writer = await connect(url)
        writer.write(request_head(url, size, headers | {"X-GitHub-Delivery": f"big-{number}"}))
        for start in range(0, size - 1, 1024 * 1024):
            writer.write(body[start : min(start + 1024 * 1024, size - 1)])
            await writer.drain()
        answer = asyncio.ensure_future(read_response(reader))
        another = asyncio.ensure_future(first_answer.wait())
        await asyncio.wait([answer, another], return_when=asyncio.FIRST_COMPLETED)
        another.cancel()
        first_answer.set()
        writer.write(body[size - 1 :])
        await writer.drain()
        try:
            return await answer
        finally:
            writer.close()

    return await asyncio.wait_for(asyncio.gather(*(send(n) for n in range(senders))), RESPONSE_WAIT)


def test_unsigned_bodies_beyond_the_bytes_in_flight_are_refused_before_they_are_all_held(sqlite_store):
    cap = WEBHOOK_BODY_MAX_BYTES  # the smallest cap allowed: one largest delivery
    platform = make_platform(sqlite_store, settings=make_settings(WAOOAW_WEBHOOK_BYTES_IN_FLIGHT=cap))
    senders, size = 6, 8 * 1024 * 1024
    assert senders * size > cap
    with live_server(create_app(platform, secret=TEST_SECRET, run_worker=False)) as url:
        answers = asyncio.run(unsigned_bodies_together(url, senders, size))
    statuses = sorted(status for status, _ in answers)
    assert set(statuses) == {401, 503}, statuses
    assert all(int(headers["retry-after"]) > 0 for status, headers in answers if status == 503)
    assert platform.body_budget.peak <= cap
    assert platform.body_budget.held == 0
