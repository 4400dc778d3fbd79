"""How the Context API answers a refusal: `{"error": "…"}` with the status agents.context.errors assigns."""

from __future__ import annotations

import psycopg
import structlog
from fastapi import Request, Response
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from sqlalchemy import exc as sqlalchemy_errors

from agents.context.errors import ContextError, RateLimited, Unauthorized, Unavailable

log = structlog.get_logger(__name__)

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


def unreachable(request: Request, exc: Exception) -> Unavailable:
    log.warning("api.store_unreachable", method=request.method, path=request.url.path, error=repr(exc))
    message = "the context store cannot be reached: try again"
    if request.method != "GET":  # the statement may have been sent before the store failed
        message += " (read what you wrote before you write it again: it may have been made)"
    return Unavailable(message)
