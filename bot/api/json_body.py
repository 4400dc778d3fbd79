"""A Context API request's body: read once, capped (bot/bodies.py), and parsed strictly.

Its size (413), its type (415), whether it parses as JSON and stays within BODY_DEPTH_MAX
levels with no U+0000 in it (422), before any model or handler sees it.
"""

from __future__ import annotations

import orjson
from fastapi import Request

from agents.context.documents import DEPTH_MAX, check_json
from agents.context.errors import InvalidRequest
from bot.api.errors import PayloadTooLarge, UnsupportedMediaType
from bot.bodies import capped_chunks

API_BODY_MAX_BYTES = 4 * 1024 * 1024
JSON = "application/json"  # the media type of every body the API takes and gives
# Before any model or handler sees a body (1,000 levels overflowed them): what a body carries,
# a context's data or a handoff's package, has its own limit, DEPTH_MAX, named in its refusal.
BODY_DEPTH_MAX = 2 * DEPTH_MAX


def api_body_too_large() -> PayloadTooLarge:
    return PayloadTooLarge(f"body larger than {API_BODY_MAX_BYTES} bytes")


async def read_json_body(request: Request) -> None:
    """Read the body once, capped, and parse it strictly (no NaN, no duplicate work for FastAPI)."""
    body = b"".join([chunk async for chunk in capped_chunks(request, API_BODY_MAX_BYTES, api_body_too_large)])
    request._body = body  # Starlette's own cache of the body: FastAPI reads it from there
    if not body:
        return
    media_type = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        untyped = media_type or "untyped"
        raise UnsupportedMediaType(f"the body must be JSON (Content-Type: application/json), not {untyped}")
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}") from exc
    check_json("body", parsed, depth_max=BODY_DEPTH_MAX)
    request._json = parsed  # and of the parsed body
