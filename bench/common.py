"""What the benchmark scripts share: a free port, a fresh-schema URL, the real payloads, the server
under test in a subprocess, and a cheap HTTP client."""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PG_URL = os.environ.get("WAOOAW_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DEFAULT_REDIS_URL = os.environ.get("WAOOAW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
FIXTURE_DIRS = [ROOT / "tests" / "fixtures" / "webhooks", ROOT.parent / "shared" / "fixtures" / "webhooks"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def schema_url(pg_url: str, schema: str) -> str:
    """`pg_url` with every connection's search_path set to `schema`."""
    return f"{pg_url}{'&' if '?' in pg_url else '?'}options=-csearch_path%3D{schema}"


@contextmanager
def fresh_schema(pg_url: str, prefix: str) -> Iterator[str]:
    """A new PostgreSQL schema named `prefix` and a random tag, as a database URL; dropped afterwards
    (when that fails, a warning names the schema and the bench's figures still print)."""
    from sqlalchemy import create_engine, text

    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema_url(pg_url, schema)
    finally:
        try:
            with admin.connect() as connection:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        except Exception as exc:  # noqa: BLE001 - clean-up reports, it does not hide the bench's figures
            print(f"warning: could not drop the schema {schema}: {exc!r}", file=sys.stderr)
        admin.dispose()


def find_payload(relative: str) -> Path:
    """A real webhook payload: the repo's copy first, ../shared as a fallback."""
    for base in FIXTURE_DIRS:
        if (base / relative).is_file():
            return base / relative
    raise SystemExit(f"no webhook fixture {relative} under {', '.join(map(str, FIXTURE_DIRS))}")


def percentile(sorted_values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of values sorted ascending (NaN for none)."""
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, max(0, math.ceil(fraction * len(sorted_values)) - 1))]


async def send_time(scheduled: float) -> float:
    """Wait for a request's scheduled send time; return the time its latency counts from.

    An open-loop request's latency counts from its scheduled time when its client was still
    busy then (a late reply held it up: that wait is the server's, and hiding it would be
    coordinated omission). When the client was idle, it counts from the moment the timer
    actually woke: asyncio's timers wake late here (epoll waits in whole milliseconds, then
    the VM wakes the process: 0.7 ms late at p50, 1.9 ms at p95 measured on this machine),
    and that lateness is the load generator's, not the server's.
    """
    delay = scheduled - time.perf_counter()
    if delay <= 0:
        return scheduled
    await asyncio.sleep(delay)
    return time.perf_counter()


STARTUP_TIMEOUT = 60.0


@dataclass
class Server:
    """A server under test, run as `python SCRIPT --serve …` so that it has a process of its own."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown (runs the lifespan end)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def spawn_server(name: str, script: Path, arguments: list[str], log_dir: Path) -> Server:
    """`script --serve … --port P` on a free port, with none of the caller's GitHub, Anthropic or WAOOAW settings."""
    port = free_port()
    command = [sys.executable, str(script), "--serve", *arguments, "--port", str(port)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "ANTHROPIC_", "WAOOAW_"))}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    log_path = log_dir / f"{name}.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    return Server(name, port, process, log_path)


async def wait_ready(server: Server) -> None:
    import httpx

    deadline = time.monotonic() + STARTUP_TIMEOUT
    async with httpx.AsyncClient(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise SystemExit(
                    f"{server.name} server exited ({server.process.returncode}):\n{server.log_path.read_text()}"
                )
            try:
                if (await client.get(f"{server.url}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)  # bounded start-up wait, not a poll for work
    raise SystemExit(f"{server.name} server not ready within {STARTUP_TIMEOUT:g} s:\n{server.log_path.read_text()}")


# What a request on a Connection raises when the server or the connection fails it.
TRANSPORT_ERRORS = (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError)


class Connection:
    """A minimal HTTP/1.1 keep-alive client on one socket: what a load generator needs and no more.

    A general client (httpx) spends about a millisecond of CPU per request here, more than
    the server under test; this one spends a few microseconds. Responses carry a
    Content-Length (or none, for 304), which is all the API sends.
    """

    IDLE_LIMIT = 4.0  # seconds; uvicorn closes a keep-alive connection idle for 5

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._used = 0.0

    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
        if self._writer is None or time.perf_counter() - self._used > self.IDLE_LIMIT:
            await self._connect()
        assert self._reader is not None and self._writer is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        head += f"Content-Length: {len(body)}\r\n\r\n" if body or method in ("PUT", "POST") else "\r\n"
        self._writer.write(head.encode() + body)
        status_line = await self._reader.readline()
        if not status_line:
            raise ConnectionResetError("the server closed the connection")
        status = int(status_line.split(b" ", 2)[1])
        length, close = 0, False
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        payload = await self._reader.readexactly(length) if length else b""
        self._used = time.perf_counter()
        if close:
            await self.close()
        return status, payload

    async def _connect(self) -> None:
        await self.close()
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        sock = self._writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except OSError:
                pass
        self._reader = self._writer = None


def add_service_options(parser: argparse.ArgumentParser) -> None:
    """--pg-url and --redis-url, for a benchmark that makes its own schema and stream and removes them."""
    parser.add_argument(
        "--pg-url",
        default=DEFAULT_PG_URL,
        help=f"PostgreSQL; a fresh schema is created and dropped (default {DEFAULT_PG_URL})",
    )
    parser.add_argument(
        "--redis-url",
        default=DEFAULT_REDIS_URL,
        help=f"Redis; a unique stream is used and deleted (default {DEFAULT_REDIS_URL})",
    )
