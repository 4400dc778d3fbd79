"""Conditional reads: a file read again costs nothing of GitHub's quota while it has not changed.

GitHub answers a GET sent with `If-None-Match: <the ETag it gave before>` by 304 and no body
when nothing changed, and a 304 does not count against the rate limit. `ConditionalReads`
keeps each answer's ETag and body per quota (an installation, or the token) and URL — in
Redis, shared by every process, or in this process without Redis — and serves the body it
kept when GitHub says 304. It is for what is read again and again, the repository config
and policy files (bot/reader.py); the publisher's look-ups by marker read plain, as they
must see what was just written.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, cast

import orjson
import structlog
from githubkit import GitHub
from redis.exceptions import RedisError

from bot.loop_redis import LoopRedis
from bot.ratelimit import GITHUB_PREFIX

log = structlog.get_logger(__name__)

KEEP_SECONDS = 24 * 3600  # a kept answer unused this long is forgotten
KEPT_BODY_MAX_BYTES = 1024 * 1024  # a larger answer is not kept (a policy file is a few kilobytes)
LOCAL_ENTRIES = 512


class ConditionalReads:
    def __init__(self, redis_url: str | None, *, prefix: str = GITHUB_PREFIX) -> None:
        self.redis = LoopRedis(redis_url) if redis_url else None
        self.prefix = prefix
        self._local: OrderedDict[str, bytes] = OrderedDict()

    async def get_json(self, github: GitHub[Any], quota: str, url: str, params: dict[str, Any]) -> Any:
        """GET `url` with `params` as JSON, sent conditionally when an answer to it is kept."""
        key = f"{self.prefix}etag:{quota}:{url}?{orjson.dumps(params, option=orjson.OPT_SORT_KEYS).decode()}"
        kept = await self._load(key)
        etag, _, body = kept.partition(b"\n") if kept else (b"", b"", b"")
        headers = {"If-None-Match": etag.decode()} if etag else {}
        response = await github.arequest("GET", url, params=params, headers=headers)
        if response.status_code == 304 and etag:
            log.debug("github.not_modified", url=url)
            return orjson.loads(body)
        answer_etag = response.headers.get("etag")
        if answer_etag and len(response.content) <= KEPT_BODY_MAX_BYTES:
            await self._keep(key, answer_etag.encode() + b"\n" + response.content)
        return response.json()

    async def _load(self, key: str) -> bytes | None:
        if self.redis is None:
            if key in self._local:
                self._local.move_to_end(key)
            return self._local.get(key)
        try:
            return cast(bytes | None, await self.redis.client().get(key))  # a client that does not decode
        except (RedisError, OSError) as exc:
            log.warning("github.etag_cache_unavailable", error=repr(exc))
            return None

    async def _keep(self, key: str, value: bytes) -> None:
        if self.redis is None:
            self._local[key] = value
            self._local.move_to_end(key)
            while len(self._local) > LOCAL_ENTRIES:
                self._local.popitem(last=False)
            return
        try:
            await self.redis.client().set(key, value, ex=KEEP_SECONDS)
        except (RedisError, OSError) as exc:
            log.warning("github.etag_cache_unavailable", error=repr(exc))

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.close()
