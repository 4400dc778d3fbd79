"""Token records from the store, for the gate (bot/api/route.py); kept in process when Redis announces revocations.

While Redis cannot be asked, kept records are not trusted: the route's rate limit says so
on every request (`Admission.vouched`) and the record is forgotten.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog
from starlette.concurrency import run_in_threadpool

from agents import tokens
from agents.store.db import Store
from agents.tokens import TokenRecord
from bot.api.loop_db import LoopDatabase

log = structlog.get_logger(__name__)

TOKEN_FRESH_SECONDS = 10.0  # with Redis only: revocations then arrive through the marker
TOKEN_STALE_SECONDS = 60.0  # a token idle this long is loaded by its next request


class TokenBook:
    """Token records from the store; kept in process when revocations are announced (`fresh_seconds` > 0).

    A kept record younger than `fresh_seconds` is used as it is. An older one, up to
    `stale_seconds`, is still used while a reload runs in the background, so no request
    waits on the store for a token in steady use; past that, the request loads it. What
    can change a record is a revocation (announced through Redis, checked on every
    request: `Gate.limit`) or its installation leaving (reaches a token in use within
    `fresh_seconds` and one request).
    """

    def __init__(
        self,
        store: Store,
        database: LoopDatabase | None = None,
        *,
        fresh_seconds: float,
        stale_seconds: float = 0.0,
        clock: Callable[[], float],
    ) -> None:
        self.store, self.database, self.clock = store, database, clock
        self.fresh_seconds, self.stale_seconds = fresh_seconds, max(stale_seconds, fresh_seconds)
        self._records: dict[str, tuple[float, TokenRecord]] = {}  # id → (loaded at, record)
        self._reloading: dict[str, asyncio.Task[None]] = {}

    async def get(self, token_id: str) -> TokenRecord | None:
        now = self.clock()
        kept = self._records.get(token_id) if self.fresh_seconds else None
        if kept is not None:
            age = now - kept[0]
            if 0 <= age < self.fresh_seconds:
                return kept[1]
            if 0 <= age < self.stale_seconds:
                self._reload_soon(token_id)
                return kept[1]
        return self._keep(token_id, now, await self._load(token_id))

    def forget(self, token_id: str) -> None:
        self._records.pop(token_id, None)

    def _reload_soon(self, token_id: str) -> None:
        running = self._reloading.get(token_id)
        if running is not None and not running.done() and running.get_loop() is asyncio.get_running_loop():
            return
        self._reloading[token_id] = asyncio.create_task(self._reload(token_id))

    async def _reload(self, token_id: str) -> None:
        started = self.clock()
        try:
            self._keep(token_id, started, await self._load(token_id))
        except Exception as exc:  # noqa: BLE001 - the kept record ages out; the next request after that loads it
            log.warning("api.token_reload_failed", token=token_id, error=repr(exc))
        finally:
            if self._reloading.get(token_id) is asyncio.current_task():
                del self._reloading[token_id]

    def _keep(self, token_id: str, loaded_at: float, record: TokenRecord | None) -> TokenRecord | None:
        if not self.fresh_seconds:
            return record
        if record is None:  # unknown ids are not kept: nobody can fill the cache
            self.forget(token_id)
            return None
        if len(self._records) > 10_000:
            kept_ones = self._records.items()
            self._records = {ident: kept for ident, kept in kept_ones if loaded_at - kept[0] < self.stale_seconds}
        self._records[token_id] = (loaded_at, record)
        return record

    async def _load(self, token_id: str) -> TokenRecord | None:
        if self.database is not None and self.database.serves_this_loop():
            return await self.database.load_token(token_id)
        return await run_in_threadpool(self._read, token_id)

    def _read(self, token_id: str) -> TokenRecord | None:
        with self.store.reading() as session:
            return tokens.load(session, token_id)
