"""What every Context API request passes before its handler: token, rate limit, body.

In this order: the bearer token (401), the token's rate limit (429), then for a body
its size (413), its type (415), whether it parses as JSON and stays within BODY_DEPTH_MAX
levels with no U+0000 in it (422). Errors are
answered `{"error": "…"}` with the status agents.context.errors assigns. (The GET of a
latest version and the PUT apply the rate limit themselves, in one Redis round trip with
the cache; what is refused before they run takes it here, so a request over its limit is
answered 429 either way.)

Tokens are read from the store; with Redis a token's record is also kept in process
(refreshed in the background every few seconds while in use: TokenBook), and a
revocation reaches every process at once through a marker the rate-limit script checks
in the same round trip. While Redis cannot be asked, kept records are not trusted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
import redis
import redis.asyncio as aioredis
import structlog
from fastapi import Request, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from psycopg_pool import PoolTimeout
from redis.exceptions import RedisError
from sqlalchemy import exc as sqlalchemy_errors
from starlette.concurrency import run_in_threadpool

from agents import tokens
from agents.context.cache import MARK_FUNCTION, READ_FUNCTION
from agents.store.db import Store
from agents.context.documents import DEPTH_MAX, check_json
from agents.context.errors import ContextError, InvalidRequest, RateLimited, Unauthorized, Unavailable
from agents.tokens import Grant, TokenRecord
from bot.api.loop_db import LoopDatabase

log = structlog.get_logger(__name__)

MAX_BODY_BYTES = 4 * 1024 * 1024
# Before any model or handler sees a body (1,000 levels overflowed them): what a body carries,
# a context's data or a handoff's package, has its own limit, DEPTH_MAX, named in its refusal.
BODY_DEPTH_MAX = 2 * DEPTH_MAX
TOKEN_FRESH_SECONDS = 10.0  # with Redis only: revocations then arrive through the marker
TOKEN_STALE_SECONDS = 60.0  # a token idle this long is loaded by its next request
REVOCATION_MARKER_SECONDS = 3600  # outlives any cached token record many times over
REDIS_CONNECTIONS = 64
# PostgreSQL down, restarting, out of connections, or a statement cancelled: the request was
# fine, so 503 and Retry-After rather than a bare 500. (Redis failing is not among them: the
# API goes on without its cache and limiter.)
STORE_UNREACHABLE = (
    sqlalchemy_errors.OperationalError,  # the store's engine, in a thread
    sqlalchemy_errors.TimeoutError,  # its connection pool exhausted
    psycopg.OperationalError,  # bot/api/loop_db.py, on the loop
    PoolTimeout,  # its pool: no connection within CONNECTION_WAIT_SECONDS
)


class PayloadTooLarge(ContextError):
    status = 413


class UnsupportedMediaType(ContextError):
    status = 415


def error_response(error: ContextError) -> Response:
    headers: dict[str, str] = {}
    if isinstance(error, Unauthorized):
        headers["WWW-Authenticate"] = 'Bearer realm="waooaw"'
    if isinstance(error, RateLimited):
        headers["Retry-After"] = str(max(1, int(-(-error.retry_after // 1))))  # whole seconds, rounded up
    if isinstance(error, Unavailable):
        headers["Retry-After"] = "1"
    return JSONResponse({"error": error.message}, status_code=error.status, headers=headers)


# --------------------------------------------------------------------------- Redis per event loop


class LoopRedis:
    """An asyncio Redis client for the running event loop, with its Lua scripts.

    A server runs one loop; a TestClient may run one per `with` block, and a client
    made on one loop cannot be used on another.
    """

    def __init__(self, url: str, scripts: dict[str, str]) -> None:
        self.url = url
        self._sources = scripts
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: aioredis.Redis | None = None
        self._scripts: dict[str, Any] = {}

    def client(self) -> aioredis.Redis:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            # Blocking: a burst of requests waits for a connection instead of failing (the plain pool raises).
            pool = aioredis.BlockingConnectionPool.from_url(
                self.url, max_connections=REDIS_CONNECTIONS, timeout=5, socket_timeout=2, socket_connect_timeout=2
            )
            self._client = aioredis.Redis.from_pool(pool)
            self._loop = loop
            self._scripts = {name: self._client.register_script(source) for name, source in self._sources.items()}
        return self._client

    def script(self, name: str) -> Any:
        self.client()
        return self._scripts[name]

    async def close(self) -> None:
        if self._client is not None and self._loop is asyncio.get_running_loop():
            await self._client.aclose()
        self._client = None


# --------------------------------------------------------------------------- rate limits


@dataclass(frozen=True)
class Admission:
    allowed: bool
    retry_after: float = 0.0
    revoked: bool = False
    vouched: bool = True  # False: Redis could not be asked, so no revocation marker was checked


# take(bucket, revocation marker, rate/s, burst, now s) → 1 allowed | 0 refused | -1 revoked, seconds to wait
BUCKET_FUNCTION = """
local function take(bucket, revoked, rate, burst, now)
  if redis.call('EXISTS', revoked) == 1 then return -1, 0 end
  local state = redis.call('HMGET', bucket, 'tokens', 'at')
  local tokens, at = tonumber(state[1]), tonumber(state[2])
  if tokens == nil or at == nil then tokens, at = burst, now end
  if now > at then tokens = math.min(burst, tokens + (now - at) * rate); at = now end
  local allowed, wait = 0, 0
  if tokens >= 1 then tokens = tokens - 1; allowed = 1 else wait = (1 - tokens) / rate end
  redis.call('HSET', bucket, 'tokens', string.format('%.17g', tokens), 'at', string.format('%.17g', at))
  redis.call('PEXPIRE', bucket, math.ceil(burst / rate * 1000) + 1000)
  return allowed, wait
end
"""
# KEYS bucket, marker; ARGV rate, burst, now → {1|0|-1, wait}
TOKEN_BUCKET_LUA = BUCKET_FUNCTION + """
local allowed, wait = take(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
return {allowed, string.format('%.17g', wait)}
"""
# The hot path, GET of a latest version, in one round trip: the rate limit, then the cache.
# KEYS bucket, marker, entry, writers; ARGV rate, burst, now, lease, lease ms
# → {1|0|-1, wait[, version, body | 1 lease granted | 0 read without filling]}
ADMIT_AND_READ_LUA = BUCKET_FUNCTION + READ_FUNCTION + """
local allowed, wait = take(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
if allowed ~= 1 then return {allowed, string.format('%.17g', wait)} end
local found = read_latest(KEYS[3], KEYS[4], ARGV[4], ARGV[5])
if type(found) == 'table' then return {1, '0', found[1], found[2]} end
return {1, '0', found}
"""
# A PUT on PostgreSQL, in one round trip: the rate limit, then the writer's mark on the cache entry.
# KEYS bucket, marker, entry, writers; ARGV rate, burst, now, writer, mark ms → {1|0|-1, wait}
ADMIT_AND_MARK_LUA = BUCKET_FUNCTION + MARK_FUNCTION + """
local allowed, wait = take(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
if allowed == 1 then mark_writing(KEYS[3], KEYS[4], ARGV[4], ARGV[5]) end
return {allowed, string.format('%.17g', wait)}
"""


class RedisRateLimiter:
    """A token bucket per API token in Redis, shared by every process; the same call checks revocation."""

    def __init__(self, redis_client: LoopRedis, *, rate: float, burst: int, prefix: str) -> None:
        self.redis, self.rate, self.burst, self.prefix = redis_client, rate, burst, prefix

    def keys(self, token_id: str) -> list[str]:
        return [f"{self.prefix}api:rate:{token_id}", revocation_key(self.prefix, token_id)]

    def args(self, now: float) -> list[object]:
        return [self.rate, self.burst, repr(now)]

    async def acquire(self, token_id: str, now: float) -> Admission:
        try:
            allowed, wait = await self.redis.script("bucket")(keys=self.keys(token_id), args=self.args(now))
        except RedisError as exc:
            return unlimited(exc)
        return admission(allowed, wait)


def admission(allowed: int, wait: bytes | str) -> Admission:
    return Admission(allowed == 1, float(wait), revoked=allowed == -1)


def unlimited(exc: RedisError) -> Admission:
    # The API stays up without its limiter; the store is still the authority on tokens.
    log.warning("api.rate_limit_unavailable", error=repr(exc))
    return Admission(True, vouched=False)


class LocalRateLimiter:
    """The same token bucket in this process, for a set-up without Redis (one process)."""

    def __init__(self, *, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}

    async def acquire(self, token_id: str, now: float) -> Admission:
        tokens, at = self._buckets.get(token_id, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + max(0.0, now - at) * self.rate)
        if len(self._buckets) > 10_000:  # forget tokens idle long enough to have a full bucket again
            full_after = self.burst / self.rate
            self._buckets = {ident: state for ident, state in self._buckets.items() if now - state[1] < full_after}
        if tokens >= 1:
            self._buckets[token_id] = (tokens - 1, now)
            return Admission(True)
        self._buckets[token_id] = (tokens, now)
        return Admission(False, (1 - tokens) / self.rate)


def revocation_key(prefix: str, token_id: str) -> str:
    return f"{prefix}api:revoked:{token_id}"


def announce_revocation(redis_url: str, token_id: str, *, prefix: str) -> None:
    """Tell every API process at once that a token is revoked (the store already says so)."""
    client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        client.set(revocation_key(prefix, token_id), b"1", ex=REVOCATION_MARKER_SECONDS)
    finally:
        client.close()


# --------------------------------------------------------------------------- tokens


class TokenBook:
    """Token records from the store; kept in process when revocations are announced (`fresh_seconds` > 0).

    A kept record younger than `fresh_seconds` is used as it is. An older one, up to
    `stale_seconds`, is still used while a reload runs in the background, so no request
    waits on the store for a token in steady use; past that, the request loads it. What
    can change a record is a revocation (announced through Redis, checked on every
    request: `Gate.enforce`) or its installation leaving (reaches a token in use within
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
            self._records = {ident: kept for ident, kept in self._records.items() if loaded_at - kept[0] < self.stale_seconds}
        self._records[token_id] = (loaded_at, record)
        return record

    async def _load(self, token_id: str) -> TokenRecord | None:
        if self.database is not None and self.database.serves_this_loop():
            return await self.database.load_token(token_id)
        return await run_in_threadpool(self._read, token_id)

    def _read(self, token_id: str) -> TokenRecord | None:
        with self.store.reading() as session:
            return tokens.load(session, token_id)


class Gate:
    def __init__(self, book: TokenBook, limiter: RedisRateLimiter | LocalRateLimiter, clock: Callable[[], float]) -> None:
        self.book, self.limiter, self.clock = book, limiter, clock

    async def authenticate(self, request: Request) -> tuple[str, Grant]:
        """The token's id and grant (401 if it is missing or not valid); no rate limit yet."""
        scheme, _, credentials = (request.headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise Unauthorized("send the token as Authorization: Bearer wao_<id>_<secret>")
        try:
            token_id, secret = tokens.parse(credentials)
            return token_id, tokens.check(await self.book.get(token_id), secret, self.clock())
        except tokens.InvalidToken as invalid:
            raise Unauthorized(str(invalid)) from invalid

    async def limit(self, token_id: str) -> None:
        self.enforce(token_id, await self.limiter.acquire(token_id, self.clock()))

    def enforce(self, token_id: str, admitted: Admission) -> None:
        if not admitted.vouched:  # until Redis answers again, the store decides on every request
            self.book.forget(token_id)
        if admitted.revoked:
            self.book.forget(token_id)
            raise Unauthorized("the token was revoked")
        if not admitted.allowed:
            raise RateLimited(f"rate limit of token {token_id} exceeded", admitted.retry_after)

    @staticmethod
    async def read_body(request: Request) -> None:
        """Read the body once, capped, and parse it strictly (no NaN, no duplicate work for FastAPI)."""
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"body larger than {MAX_BODY_BYTES} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise PayloadTooLarge(f"body larger than {MAX_BODY_BYTES} bytes")
            chunks.append(chunk)
        body = b"".join(chunks)
        request._body = body  # Starlette's own cache of the body: FastAPI reads it from there
        if not body:
            return
        media_type = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
        if media_type != "application/json" and not media_type.endswith("+json"):
            raise UnsupportedMediaType(f"the body must be JSON (Content-Type: application/json), not {media_type or 'untyped'}")
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest(f"the body is not valid JSON: {exc}") from exc
        check_json("body", parsed, depth_max=BODY_DEPTH_MAX)
        request._json = parsed  # and of the parsed body


def unreachable(request: Request, exc: Exception) -> Unavailable:
    log.warning("api.store_unreachable", method=request.method, path=request.url.path, error=repr(exc))
    message = "the context store cannot be reached: try again"
    if request.method != "GET":  # the statement may have been sent before the store failed
        message += " (read what you wrote before you write it again: it may have been made)"
    return Unavailable(message)


def limits_itself(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """Mark an endpoint that applies the rate limit itself (`Gate.limit`, or in one round trip with its own work)."""
    endpoint.limits_itself = True  # type: ignore[attr-defined]
    return endpoint


def gated_route(gate: Gate) -> type[APIRoute]:
    """A route class whose handler first passes the gate and answers ContextErrors with their status."""

    class GatedRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handle = super().get_route_handler()
            has_body = bool(self.methods & {"POST", "PUT", "PATCH"})
            self_limited = getattr(self.endpoint, "limits_itself", False)

            async def gated(request: Request) -> Response:
                try:
                    request.state.token_id, request.state.grant = await gate.authenticate(request)
                    if not self_limited:
                        await gate.limit(request.state.token_id)
                    # An endpoint that limits itself never runs for a body or parameters refused
                    # before it: those refusals take the limit here (they count, as every request does).
                    try:
                        if has_body:
                            await gate.read_body(request)
                    except ContextError:
                        if self_limited:
                            await gate.limit(request.state.token_id)
                        raise
                    try:
                        return await handle(request)
                    except RequestValidationError:
                        if self_limited:
                            await gate.limit(request.state.token_id)
                        raise
                except ContextError as error:
                    return error_response(error)
                except STORE_UNREACHABLE as exc:
                    return error_response(unreachable(request, exc))

            return gated

    return GatedRoute


_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="A Context API token, `wao_<id>_<secret>` (`waooaw tokens create`).",
)


async def granted(request: Request, _token: HTTPAuthorizationCredentials | None = Security(_bearer)) -> Grant:
    """The grant the gate admitted this request with (the parameter documents the scheme).

    `async` although it awaits nothing: FastAPI runs a plain `def` dependency in its thread
    pool, a hand-off to a thread and back on every request for one attribute read."""
    return request.state.grant
