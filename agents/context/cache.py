"""The read-through cache of each context's latest version, in Redis.

The rule it keeps: a reader never gets a version older than one already acknowledged
to a writer. Three Lua scripts, one Redis hash per context (`id`, `v`, `body`, `lease`):

- a writer, after its commit and before it answers, publishes the new version; the
  entry only ever moves to a newer row (row ids grow with every save), and any reader's
  lease is cancelled;
- a reader that misses takes a lease, reads the database, and fills the entry only if
  its lease is still there: a write committed while it read cancelled the lease, so a
  value read before that write can never be filled over it, even if the entry was
  evicted or expired in between.

Writers are every session of a watched Store (agents in the worker, the CLI, the API on
SQLite): `watch` hooks the publication onto the Store's commits; the API's one-statement
writes on PostgreSQL publish the same way themselves. If Redis fails at that moment the
write still stands; the entry then lags by at most ENTRY_TTL_MS.
"""

from __future__ import annotations

import orjson
import redis
import structlog
from sqlalchemy import event
from sqlalchemy.orm import Session

from agents.context.db import Store
from agents.context.documents import version_document
from agents.context.models import ContextVersion
from agents.context.repository import ContextKey

log = structlog.get_logger(__name__)

ENTRY_TTL_MS = 60_000
LEASE_TTL_MS = 5_000
DEFAULT_PREFIX = "waooaw:"

# read_latest(entry, lease token, lease ms) → {version, body} on a hit; 1 lease granted; 0 another reader holds it.
READ_FUNCTION = """
local function read_latest(entry, lease, lease_ms)
  local found = redis.call('HMGET', entry, 'v', 'body')
  if found[2] then return {found[1], found[2]} end
  if redis.call('HSETNX', entry, 'lease', lease) == 1 then
    redis.call('PEXPIRE', entry, lease_ms)
    return 1
  end
  return 0
end
"""
READ_LUA = READ_FUNCTION + "return read_latest(KEYS[1], ARGV[1], ARGV[2])"

# KEYS[1] entry; ARGV lease token, row id, version, body, ttl ms. → 1 filled, 0 the lease was cancelled.
FILL_LUA = """
if redis.call('HGET', KEYS[1], 'lease') ~= ARGV[1] then return 0 end
redis.call('HDEL', KEYS[1], 'lease')
if tonumber(ARGV[2]) <= tonumber(redis.call('HGET', KEYS[1], 'id') or '0') then return 0 end
redis.call('HSET', KEYS[1], 'id', ARGV[2], 'v', ARGV[3], 'body', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""

# KEYS[1] entry; ARGV row id, version, body, ttl ms. → 1 published, 0 the entry already holds a newer row.
PUBLISH_LUA = """
redis.call('HDEL', KEYS[1], 'lease')
if tonumber(ARGV[1]) <= tonumber(redis.call('HGET', KEYS[1], 'id') or '0') then return 0 end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'v', ARGV[2], 'body', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"""

_CACHE = "waooaw.context_cache"
_PENDING = "waooaw.context_cache.pending"


def cache_key(prefix: str, key: ContextKey) -> str:
    # JSON keeps the parts apart whatever characters a scope holds.
    return prefix + "ctx:" + orjson.dumps([key.installation_id, key.repo, key.agent, key.scope]).decode()


def encode(row: ContextVersion) -> bytes:
    """The body GET answers with for this version: the cache holds exactly these bytes."""
    return orjson.dumps(version_document(row))


class LatestVersionCache:
    """The writers' side, synchronous: it runs in the thread that committed."""

    def __init__(self, redis_url: str, *, prefix: str = DEFAULT_PREFIX) -> None:
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
                log.warning("context_cache.publish_failed", context=f"{row.repo}/{row.agent}/{row.scope}", error=repr(exc))

    def close(self) -> None:
        self._redis.close()


def watch(store: Store, redis_url: str, *, prefix: str = DEFAULT_PREFIX) -> LatestVersionCache:
    """Publish every context version committed through `store` to the cache (once per store)."""
    info = dict(store.sessions.kw.get("info") or {})
    if _CACHE in info:
        return info[_CACHE]
    cache = info[_CACHE] = LatestVersionCache(redis_url, prefix=prefix)
    store.sessions.configure(info=info)
    event.listen(store.sessions, "after_flush", _collect)
    event.listen(store.sessions, "after_commit", _publish)
    event.listen(store.sessions, "after_rollback", _forget)
    return cache


def watcher(store: Store) -> LatestVersionCache | None:
    return (store.sessions.kw.get("info") or {}).get(_CACHE)


def _collect(session: Session, _flush_context: object) -> None:
    # After a flush `session.new` still lists what the flush inserted.
    rows = [obj for obj in session.new if isinstance(obj, ContextVersion)]
    if rows:
        session.info.setdefault(_PENDING, []).extend(rows)


def _publish(session: Session) -> None:
    rows = session.info.pop(_PENDING, None)
    cache = session.info.get(_CACHE)
    if rows and cache is not None:
        cache.publish(rows)


def _forget(session: Session) -> None:
    session.info.pop(_PENDING, None)
