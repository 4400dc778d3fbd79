"""PostgreSQL on the event loop: PUT's write (the loop backend of agents/context/writes.py, through
bot/api/loop_writer.py) and the gate's token loads.

A store call from a thread costs two hand-offs between the event loop and a worker
thread and SQLAlchemy's execution around one statement; under load the thread then also
waits for the GIL the loop holds, and the requests on the loop wait for the thread. The
API therefore runs its hot statements on the loop — the write
(agents.context.writes.APPEND_POSTGRES) and a token's load (agents.tokens.LOAD)
— over a small pool of psycopg async connections made with the engine's own connection
arguments; everything else (the checks before a write, the StaleContext diagnosis after)
runs in threads, as on the session backend.

The pool belongs to the event loop the app's lifespan opened it on (a server has one). A
request on another loop (a TestClient used without `with`) takes the session backend.
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.dialects import postgresql

from agents import tokens
from agents.context.models import ContextVersion
from agents.context.writes import APPEND_POSTGRES, Append, written_concurrently
from agents.store.db import Store
from agents.tokens import TokenRecord

CONNECTIONS = 8  # as many as the store's threads: more only queue in PostgreSQL
# How long a statement waits for a connection: far above any wait under load (a few 100 ms at
# 1,000 clients), and what a request costs before its 503 while PostgreSQL is down.
CONNECTION_WAIT_SECONDS = 3.0
LOAD_TOKEN = str(tokens.LOAD.compile(dialect=postgresql.psycopg.dialect()))  # psycopg's style: %(id)s


class LoopDatabase:
    def __init__(self, store: Store) -> None:
        args, kwargs = store.engine.dialect.create_connect_args(store.engine.url)
        self._conninfo = args[0] if args else ""
        self._kwargs = {**kwargs, "autocommit": True}  # one statement each, atomic on its own
        self._pool: AsyncConnectionPool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def open(self) -> None:
        # A pool per lifespan: a closed pool cannot be opened again, and an app may be started twice.
        self._pool = AsyncConnectionPool(
            self._conninfo,
            kwargs=self._kwargs,
            min_size=2,
            max_size=CONNECTIONS,
            timeout=CONNECTION_WAIT_SECONDS,
            open=False,
            name="waooaw-api",
        )
        # Not waiting for the connections: the app starts while PostgreSQL is down, as with
        # the engine, and a statement then fails on its own (503 after CONNECTION_WAIT_SECONDS).
        await self._pool.open(wait=False)
        self._loop = asyncio.get_running_loop()

    async def close(self) -> None:
        if self._pool is not None and self._loop is asyncio.get_running_loop():
            await self._pool.close()
        self._pool = self._loop = None

    def serves_this_loop(self) -> bool:
        return self._pool is not None and self._loop is asyncio.get_running_loop()

    async def append(self, append: Append) -> ContextVersion | None:
        """The new row, or None if the latest version is not the one the writer expected."""
        try:
            written = await self._one(APPEND_POSTGRES, append.parameters())
        except psycopg.errors.UniqueViolation as exc:
            raise written_concurrently(append.ref) from exc
        return None if written is None else append.row(*written)

    async def load_token(self, token_id: str) -> TokenRecord | None:
        """What agents.tokens.load says of the token."""
        found = await self._one(LOAD_TOKEN, {"id": token_id})
        return None if found is None else tokens.record(*found)

    async def _one(self, statement: str, parameters: dict[str, Any]) -> tuple[Any, ...] | None:
        assert self._pool is not None, "LoopDatabase used before open (callers check serves_this_loop)"
        async with self._pool.connection() as connection:
            cursor = await connection.execute(statement, parameters)
            return await cursor.fetchone()
