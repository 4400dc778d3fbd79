"""Revoking a token reaches every API process at once: a marker in Redis that the rate limit's script checks
on every request (bot/api/limits.py), in the same round trip."""

from __future__ import annotations

import redis

REVOCATION_MARKER_SECONDS = 3600  # outlives any kept token record many times over


def revocation_key(prefix: str, token_id: str) -> str:
    return f"{prefix}api:revoked:{token_id}"


def announce_revocation(redis_url: str, token_id: str, *, prefix: str) -> None:
    """Tell every API process at once that a token is revoked (the store already says so)."""
    client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        client.set(revocation_key(prefix, token_id), b"1", ex=REVOCATION_MARKER_SECONDS)
    finally:
        client.close()
