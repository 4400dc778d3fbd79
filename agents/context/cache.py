"""The read-through cache of each context's latest version, in Redis.

The rule it keeps: a reader never gets a version older than one already acknowledged
to a writer. Lua scripts over one Redis hash per context (`id`, `v`, `body`, `lease`) and
a set beside it of the writers in flight (`…:writing`):

- a writer, after its commit and before it answers, publishes the new version; the
  entry only ever moves to a newer row (row ids grow with every save), and any reader's
  lease is cancelled;
- or, the API's writes on PostgreSQL (bot/api/loop_writer.py): before writing, the writer
  marks the context: it joins the set, and the entry loses its version and any reader's
  lease; it answers once committed, then publishes and leaves
  the set. While the set is not empty readers read the database and fill nothing, so an
  answered write is never hidden behind an older entry; if the publication is lost the
  entry stays empty (readers fill it from the database once the set expires);
- a reader that misses takes a lease, reads the database, and fills the entry only if
  its lease is still there: a write committed while it read cancelled the lease, so a
  value read before that write can never be filled over it, even if the entry was
  evicted or expired in between.

Writers are the backends of agents/context/writes.py: `watch` gives a Store its cache, and
every version written through that Store is published by the write itself. If Redis fails at
that moment the write still stands; the entry then lags by at most ENTRY_TTL_MS.
"""

from __future__ import annotations

import orjson
import redis
import structlog

from agents.context.documents import version_document
from agents.context.models import ContextVersion
from agents.context.repository import ContextKey
from agents.store.db import Store

log = structlog.get_logger(__name__)

ENTRY_TTL_MS = 60_000
LEASE_TTL_MS = 5_000
# A writer's mark outlives its write and publication many times over; one whose write took
# longer than PUBLISH_BEFORE_ANSWER_SECONDS publishes before it answers, as other writers do.
MARK_TTL_MS = 30_000
PUBLISH_BEFORE_ANSWER_SECONDS = 5.0
CACHE_PREFIX = "waooaw:"

# read_latest(entry, writers, lease token, lease ms) → {version, body} on a hit; 1 lease granted;
# 0 read the database without filling (another reader holds the lease, or a write is in flight).
READ_FUNCTION = """
local function read_latest(entry, writing, lease, lease_ms)
  if redis.call('EXISTS', writing) == 1 then return 0 end
  local found = redis.call('HMGET', entry, 'v', 'body')
  if found[2] then return {found[1], found[2]} end
  if redis.call('HSETNX', entry, 'lease', lease) == 1 then
    redis.call('PEXPIRE', entry, lease_ms)
    return 1
  end
  return 0
end
"""
READ_LUA = READ_FUNCTION + "return read_latest(KEYS[1], KEYS[2], ARGV[1], ARGV[2])"

# KEYS[1] entry; ARGV lease token, row id, version, body, ttl ms. → 1 filled, 0 the lease was cancelled.
FILL_LUA = """
if redis.call('HGET', KEYS[1], 'lease') ~= ARGV[1] then return 0 end
redis.call('HDEL', KEYS[1], 'lease')
if tonumber(ARGV[2]) <= tonumber(redis.call('HGET', KEYS[1], 'id') or '0') then return 0 end
redis.call('HSET', KEYS[1], 'id', ARGV[2], 'v', ARGV[3], 'body', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""

# publish(entry, row id, version, body, ttl ms) → 1 published, 0 the entry already holds a newer row.
PUBLISH_FUNCTION = """
local function publish(entry, id, version, body, ttl)
  redis.call('HDEL', entry, 'lease')
  if tonumber(id) <= tonumber(redis.call('HGET', entry, 'id') or '0') then return 0 end
  redis.call('HSET', entry, 'id', id, 'v', version, 'body', body)
  redis.call('PEXPIRE', entry, ttl)
  return 1
end
"""
# KEYS[1] entry; ARGV row id, version, body, ttl ms.
PUBLISH_LUA = PUBLISH_FUNCTION + "return publish(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4])"

# mark_writing(entry, writers, writer, mark ms): readers go to the database until the writer finishes.
# The row id stays: publications still only move the entry forward.
MARK_FUNCTION = """
local function mark_writing(entry, writing, writer, mark_ms)
  redis.call('SADD', writing, writer)
  redis.call('PEXPIRE', writing, mark_ms)
  redis.call('HDEL', entry, 'v', 'body', 'lease')
end
"""
# KEYS entry, writers; ARGV writer[, row id, version, body, ttl ms]: leave the set, publishing the row if
# the write made one. → 1 published, 0 not.
FINISH_LUA = (
    PUBLISH_FUNCTION
    + """
redis.call('SREM', KEYS[2], ARGV[1])
if #ARGV == 1 then return 0 end
return publish(KEYS[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
"""
)

_CACHE = "waooaw.context_cache"


def cache_key(prefix: str, key: ContextKey) -> str:
    # JSON keeps the parts apart whatever characters a scope holds.
    return prefix + "ctx:" + orjson.dumps([key.installation_id, key.repo, key.agent, key.scope]).decode()


def writing_key(entry: str) -> str:
    """The set of the writers in flight on the context whose entry is `entry` (see the rule above)."""
    return entry + ":writing"


def encode(row: ContextVersion) -> bytes:
    """The body GET answers with for this version: the cache holds exactly these bytes."""
    return orjson.dumps(version_document(row))


class LatestVersionCache:
    """The writers' side, synchronous: it runs in the thread that committed."""

    def __init__(self, redis_url: str, *, prefix: str = CACHE_PREFIX) -> None:
        self.prefix = prefix
        # Short timeouts: a Redis outage must not hold writers up for long.
        pool = redis.BlockingConnectionPool.from_url(
            redis_url, max_connections=64, timeout=5, socket_timeout=2, socket_connect_timeout=2
        )
        self._redis = redis.Redis.from_pool(pool)
        self._publish = self._redis.register_script(PUBLISH_LUA)

    def publish(self, rows: list[ContextVersion]) -> None:
        for row in rows:
            key = ContextKey(row.installation_id, row.repo, row.agent, row.scope)
            try:
                self._publish(keys=[cache_key(self.prefix, key)], args=[row.id, row.version, encode(row), ENTRY_TTL_MS])
            except redis.RedisError as exc:
                log.warning(
                    "context_cache.publish_failed", context=f"{row.repo}/{row.agent}/{row.scope}", error=repr(exc)
                )

    def close(self) -> None:
        self._redis.close()


def watch(store: Store, redis_url: str, *, prefix: str = CACHE_PREFIX) -> LatestVersionCache:
    """Give `store` its cache (once per store): the versions written through it are published there."""
    info = dict(store.sessions.kw.get("info") or {})
    if _CACHE in info:
        kept: LatestVersionCache = info[_CACHE]
        return kept
    cache = info[_CACHE] = LatestVersionCache(redis_url, prefix=prefix)
    store.sessions.configure(info=info)
    return cache


def watcher(store: Store) -> LatestVersionCache | None:
    return (store.sessions.kw.get("info") or {}).get(_CACHE)
