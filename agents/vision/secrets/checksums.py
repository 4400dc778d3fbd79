"""The checks a vendor built into its tokens, recomputed offline.

A token that fails its vendor's checksum was never issued: it is a look-alike (a
typo, a test string, a redacted copy), not a leak.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from typing import Any

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def base62(number: int, width: int) -> str:
    """`number` in base 62 (digits, then upper case, then lower case), left-padded with zeros."""
    digits = ""
    while number:
        number, rest = divmod(number, 62)
        digits = BASE62[rest] + digits
    return digits.rjust(width, "0")


def crc32_base62(entropy: str) -> str:
    """The 6-character suffix GitHub and npm append to a token's random part."""
    return base62(zlib.crc32(entropy.encode()), 6)


def has_crc32_base62_suffix(body: str) -> bool:
    """GitHub's and npm's format: 30 random base62 characters, then their CRC32 in base 62."""
    return len(body) == 36 and crc32_base62(body[:30]) == body[30:]


def _bech32_polymod(values: list[int]) -> int:
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for bit, generator in enumerate(_BECH32_GENERATOR):
            checksum ^= generator if (top >> bit) & 1 else 0
    return checksum


def _bech32_expand(prefix: str) -> list[int]:
    return [ord(c) >> 5 for c in prefix] + [0] + [ord(c) & 31 for c in prefix]


def bech32_checksum(prefix: str, data: str) -> str:
    """The six checksum characters bech32 appends to `data` (lower case) under `prefix`."""
    values = _bech32_expand(prefix) + [BECH32.index(c) for c in data] + [0] * 6
    polymod = _bech32_polymod(values) ^ 1
    return "".join(BECH32[(polymod >> 5 * (5 - i)) & 31] for i in range(6))


def is_bech32(prefix: str, data_and_checksum: str) -> bool:
    """Whether `prefix` + "1" + `data_and_checksum` is valid bech32 (case-insensitive)."""
    lowered = data_and_checksum.lower()
    if len(lowered) < 6 or any(c not in BECH32 for c in lowered):
        return False
    values = _bech32_expand(prefix.lower()) + [BECH32.index(c) for c in lowered]
    return _bech32_polymod(values) == 1


def b64decode(text: str) -> bytes | None:
    """Standard or URL-safe base64, padded or not; None when it is not base64."""
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return None


def json_object(text: str) -> dict[str, Any] | None:
    """The JSON object base64 `text` encodes, or None."""
    raw = b64decode(text)
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def is_jwt(token: str) -> bool:
    """A signed JSON Web Token: a JSON header naming its algorithm, a JSON payload, a signature."""
    header, payload, signature = token.split(".")
    decoded = json_object(header)
    return (
        decoded is not None
        and str(decoded.get("alg", "none")).lower() != "none"
        and json_object(payload) is not None
        and b64decode(signature) is not None
    )


def is_discord_bot_token(token: str) -> bool:
    """A Discord bot token begins with its bot's user id (a 17–20 digit snowflake) in base64."""
    user_id = b64decode(token.split(".", 1)[0])
    return user_id is not None and user_id.isdigit() and 17 <= len(user_id) <= 20
