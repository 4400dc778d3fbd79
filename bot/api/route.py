"""What every Context API request passes before its handler, in one route class: token, rate limit, body.

In this order: the bearer token (401), the token's rate limit (429: every request counts
once, here, whatever its handler then does), then for a body its checks
(bot/api/json_body.py: 413, 415, 422). A refusal, from here or from a handler, is answered
`{"error": "…"}` with its status (bot/api/errors.py).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response, Security
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from agents import tokens
from agents.context.errors import ContextError, RateLimited, Unauthorized
from agents.tokens import Grant
from bot.api.errors import STORE_UNREACHABLE, error_response, unreachable
from bot.api.json_body import read_json_body
from bot.api.limits import RateLimiter
from bot.api.token_book import TokenBook


class Gate:
    """The token's grant and its rate limit."""

    def __init__(self, book: TokenBook, limiter: RateLimiter, clock: Callable[[], float]) -> None:
        self.book, self.limiter, self.clock = book, limiter, clock

    async def authenticate(self, request: Request) -> tuple[str, Grant]:
        """The token's id and grant (401 if it is missing or not valid)."""
        scheme, _, credentials = (request.headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise Unauthorized("send the token as Authorization: Bearer wao_<id>_<secret>")
        try:
            token_id, secret = tokens.parse(credentials)
            return token_id, tokens.check(await self.book.get(token_id), secret, self.clock())
        except tokens.InvalidToken as invalid:
            raise Unauthorized(str(invalid)) from invalid

    async def limit(self, token_id: str) -> None:
        admitted = await self.limiter.acquire(token_id, self.clock())
        if not admitted.vouched:  # until Redis answers again, the store decides on every request
            self.book.forget(token_id)
        if admitted.revoked:
            self.book.forget(token_id)
            raise Unauthorized("the token was revoked")
        if not admitted.allowed:
            raise RateLimited(f"rate limit of token {token_id} exceeded", admitted.retry_after)


def gated_route(gate: Gate) -> type[APIRoute]:
    """A route class whose handler first passes the gate and answers ContextErrors with their status."""

    class GatedRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handle = super().get_route_handler()
            has_body = bool((self.methods or set()) & {"POST", "PUT", "PATCH"})

            async def gated(request: Request) -> Response:
                try:
                    request.state.token_id, request.state.grant = await gate.authenticate(request)
                    await gate.limit(request.state.token_id)
                    if has_body:
                        await read_json_body(request)
                    return await handle(request)
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
