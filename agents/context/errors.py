"""What can go wrong with a context operation, the same whether it ran in-process or over HTTP.

Each error carries the HTTP status the Context API answers with, so the API maps
errors to statuses and the HTTP client maps statuses back to the same errors.
"""

from __future__ import annotations


class ContextError(Exception):
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(ContextError):
    """A name, filter or body the API cannot accept as it is."""

    status = 422


class Unauthorized(ContextError):
    """No token, or one that is malformed, unknown, expired or revoked."""

    status = 401


class Forbidden(ContextError):
    """The token is valid but may not do this (read-only, or outside its job)."""

    status = 403


class NotFound(ContextError):
    """Nothing of that name in the token's installation (another installation's data looks the same)."""

    status = 404


class Conflict(ContextError):
    status = 409


class AlreadyClaimed(Conflict):
    """The handoff was claimed before; it is claimed once."""


class RateLimited(ContextError):
    status = 429

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(ContextError):
    """The store could not be reached (or gave up on the statement): nothing to fix in the request; try again."""

    status = 503
