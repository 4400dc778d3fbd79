"""The loop backend of agents/context/writes.py: the API's context writes on PostgreSQL, on the event loop.

One statement over the loop's psycopg pool (bot/api/loop_db.py) writes the version and its
audit entry. With the cache, the writer marks the context before writing (readers then read
the database), and publishes the version and leaves the mark once written: after the
answer is sent when the write was quick, before it otherwise (agents/context/cache.py says
why no reader can miss the version either way). A request on another loop than the pool's
takes the session backend.
"""

from __future__ import annotations

import time
from functools import partial

import anyio
import anyio.to_thread

from agents.context import cache as context_cache
from agents.context.models import ContextVersion
from agents.context.writes import Append, SessionWriter, Written, refuse_stale
from bot.api.cache import LatestReader
from bot.api.loop_db import LoopDatabase


class LoopWriter:
    def __init__(self, database: LoopDatabase, sessions: SessionWriter, cache: LatestReader | None) -> None:
        self.database, self.sessions, self.cache = database, sessions, cache

    async def append(self, append: Append) -> Written:
        if not self.database.serves_this_loop():
            return await self.sessions.append(append)
        if self.cache is None:
            return Written(await self._insert(append))
        mark = await self.cache.mark(append.key)
        try:
            row = await self._insert(append)
        except BaseException:
            await self.cache.finish(mark, None)
            raise
        if mark is None or time.monotonic() - mark.at > context_cache.PUBLISH_BEFORE_ANSWER_SECONDS:
            await self.cache.finish(mark, row)
            return Written(row)
        return Written(row, partial(self.cache.finish, mark, row))

    async def _insert(self, append: Append) -> ContextVersion:
        """The row; StaleContext if another version came first (the diagnosis reads the store, in a thread)."""
        row = await self.database.append(append)
        if row is None:
            await anyio.to_thread.run_sync(refuse_stale, self.sessions.store, append, limiter=self.sessions.threads)
        assert row is not None
        return row
