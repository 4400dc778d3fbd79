"""PUT's write on the event loop, on PostgreSQL.

A store from a thread costs two hand-offs between the event loop and a worker thread and
SQLAlchemy's execution around one statement; under load the thread then also waits for
the GIL the loop holds. The API therefore runs its one write statement
(agents.context.service.APPEND_POSTGRES) on the loop, over a small pool of psycopg async
connections made with the engine's own connection arguments; everything else (the checks
before, the StaleContext diagnosis after) is the service's, as on the thread path.

The pool belongs to the event loop the app's lifespan opened it on (a server has one). A
request on another loop (a TestClient used without `with`) takes the thread path.
"""

from __future__ import annotations

import asyncio

import psycopg
from psycopg_pool import AsyncConnectionPool

from agents.context.db import Store
from agents.context.models import ContextVersion
from agents.context.service import APPEND_POSTGRES, Append, written_concurrently

WRITE_CONNECTIONS = 8  # as many as the store's threads: more only queue in PostgreSQL
CONNECTION_WAIT_SECONDS = 10.0


class LoopWriter:
    def __init__(self, store: Store) -> None:
        args, kwargs = store.engine.dialect.create_connect_args(store.engine.url)
        self._conninfo = args[0] if args else ""
        self._kwargs = {**kwargs, "autocommit": True}  # one statement, atomic on its own
        self._pool: AsyncConnectionPool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def open(self) -> None:
        # A pool per lifespan: a closed pool cannot be opened again, and an app may be started twice.
        self._pool = AsyncConnectionPool(
            self._conninfo,
            kwargs=self._kwargs,
            min_size=2,
            max_size=WRITE_CONNECTIONS,
            timeout=CONNECTION_WAIT_SECONDS,
            open=False,
            name="waooaw-context-writes",
        )
        # Not waiting for the connections: the app starts while PostgreSQL is down, as with
        # the engine, and a write then fails on its own (after CONNECTION_WAIT_SECONDS).
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
        assert self._pool is not None, "LoopWriter.append before open (callers check serves_this_loop)"
        try:
            async with self._pool.connection() as connection:
                cursor = await connection.execute(APPEND_POSTGRES, append.parameters())
                written = await cursor.fetchone()
        except psycopg.errors.UniqueViolation as exc:
            raise written_concurrently(append.ref) from exc
        return None if written is None else append.row(*written)
