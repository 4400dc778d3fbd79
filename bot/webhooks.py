"""Verifying and parsing a GitHub webhook delivery.

Checks run in the order DESIGN.md fixes: size, signature, headers, JSON. The
signature is checked over the raw bytes before anything parses them. The body is
read by bot/bodies.py, bounded in size, in time and in bytes held across requests.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from bot.settings import WEBHOOK_BODY_MAX_BYTES

_DELIVERY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")  # the inbox key: never a control character
_EVENT_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
RETRY_AFTER_SECONDS = 5  # a 503's Retry-After: the database restarting, or bodies in flight being read


class WebhookRejected(Exception):
    """A delivery we refuse, with the HTTP status to answer, a reason safe to show, and headers to send."""

    def __init__(self, status: int, reason: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = dict(headers or {})


def unavailable(reason: str) -> WebhookRejected:
    """503: nothing is wrong with the delivery, it was not taken now. GitHub shows it as failed,
    and it can be redelivered with the same id for 3 days (the App's Advanced settings, or its API)."""
    return WebhookRejected(503, reason, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


@dataclass(frozen=True)
class Delivery:
    delivery_id: str
    event: str
    payload: dict[str, Any]
    body: bytes

    @property
    def action(self) -> str | None:
        action = self.payload.get("action")
        return action if isinstance(action, str) else None

    @property
    def repo(self) -> str | None:
        repository = self.payload.get("repository")
        full_name = repository.get("full_name") if isinstance(repository, dict) else None
        return full_name if isinstance(full_name, str) else None

    @property
    def installation_id(self) -> int | None:
        installation = self.payload.get("installation")
        installation_id = installation.get("id") if isinstance(installation, dict) else None
        return installation_id if type(installation_id) is int else None  # not a float, a string or a bool


def sign(secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` value GitHub sends for this body."""
    return "sha256=" + hmac.digest(secret.encode(), body, "sha256").hex()


def declared_size(content_length: str | None) -> int | None:
    """The size a `Content-Length` declares, when it is a plain number (the server checks the framing)."""
    if content_length is None or not (content_length.isascii() and content_length.isdigit()):
        return None
    return int(content_length)


def check_body_size(content_length: str | None) -> None:
    size = declared_size(content_length)
    if size is not None and size > WEBHOOK_BODY_MAX_BYTES:
        raise too_large()


def too_large() -> WebhookRejected:
    return WebhookRejected(413, f"body larger than {WEBHOOK_BODY_MAX_BYTES} bytes")


def verify_signature(secret: str | None, body: bytes, signature: str | None) -> None:
    """Constant-time HMAC-SHA256 check; only `X-Hub-Signature-256` counts (SHA-1 is not enough).

    `secret` None means the operator chose `--insecure-dev`: nothing is checked.
    """
    if secret is None:
        return
    if not signature or not signature.startswith("sha256="):
        raise WebhookRejected(401, "missing X-Hub-Signature-256")
    # As bytes: compare_digest refuses str with non-ASCII characters, and a header may carry any.
    if not hmac.compare_digest(sign(secret, body).encode(), signature.encode(errors="replace")):
        raise WebhookRejected(401, "signature does not match")


def parse_delivery(body: bytes, *, event: str | None, delivery_id: str | None) -> Delivery:
    if not event or not _EVENT_NAME.fullmatch(event):
        raise WebhookRejected(400, "missing or malformed X-GitHub-Event")
    if not delivery_id or not _DELIVERY_ID.fullmatch(delivery_id):
        raise WebhookRejected(400, "missing or malformed X-GitHub-Delivery")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise WebhookRejected(400, f"body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise WebhookRejected(400, "body is not a JSON object")
    return Delivery(delivery_id=delivery_id, event=event, payload=payload, body=body)
