"""What a value that only stands in for a secret looks like.

Two models, because a vendor's format and a free-form value need different ones:

- `fake_body` judges the random part of a vendor token (after its prefix, so that
  Stripe's `sk_test_` is never read as "test"): runs of one character, counting
  sequences, too few distinct characters, or words nobody's generator produces.
- `is_placeholder` judges a value assigned to a secret-looking name, where any of
  "example", "test", "changeme", `${VAR}`, `<token>`… means it is not a credential.

`fixture_word` finds the words (mock, fake, dummy…) that make a real-format value a
test key: still reported, at notice, since a test key may be live.
"""

from __future__ import annotations

import math
import re
from collections import Counter

_PLACEHOLDER_BODY_WORDS = (
    "example",
    "sample",
    "placeholder",
    "redacted",
    "changeme",
    "change_me",
    "your",
    "insert",
    "replace",
    "secret",
    "token",
    "xxxx",
)
_PLACEHOLDER_VALUE_WORDS = tuple(
    "example sample dummy fake mock placeholder changeme change_me change-me redacted your_ your- xxxx **** .... "
    "test secret password token todo fixme".split()
)
_TEST_BODY_WORDS = ("mock", "fake", "dummy")
FIXTURE_WORDS = frozenset(
    "mock mocks mocked fake fakes faked dummy dummies stub stubs fixture fixtures "
    "example examples sample samples".split()
)
_FORMAT_SPEC = re.compile(r"%(?:\(\w+\))?[-#0 +]*\d*(?:\.\d+)?[sdifrx]")  # "%s", "%(password)s"
_IDENTIFIER_PARTS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def _longest_run(value: str) -> int:
    """The longest run of one character, or of characters counting up or down (`123456`, `fedcba`)."""
    longest = same = rising = falling = 1
    for previous, current in zip(value, value[1:], strict=False):
        step = ord(current) - ord(previous)
        same = same + 1 if step == 0 else 1
        rising = rising + 1 if step == 1 else 1
        falling = falling + 1 if step == -1 else 1
        longest = max(longest, same, rising, falling)
    return longest


def fake_body(body: str) -> bool:
    """Whether the random part of a vendor token is a stand-in rather than generated."""
    if not body:
        return True
    lowered = body.lower()
    return (
        _longest_run(body) >= 6
        or len(set(body)) < min(8, len(body) // 3)
        or (len(body) >= 16 and entropy(body) < 2.5)
        or any(word in lowered for word in _PLACEHOLDER_BODY_WORDS)
        or "..." in body
        or "***" in body
    )


def test_word(body: str) -> str | None:
    """A word inside a token's random part that makes it a test value (`…FakeKey…`), if any."""
    lowered = body.lower()
    return next((word for word in _TEST_BODY_WORDS if word in lowered), None)


def is_placeholder(value: str) -> bool:
    """Whether a value assigned to a secret-looking name only stands in for one."""
    lowered = value.lower()
    return (
        value[:1] in "$<{[(*"
        or _FORMAT_SPEC.match(value) is not None
        or "{{" in value
        or "${" in value
        or len(set(value)) <= 2
        or _longest_run(value) >= 6
        or any(word in lowered for word in _PLACEHOLDER_VALUE_WORDS)
    )


def identifier_words(text: str) -> list[str]:
    """The words of identifiers in `text`, lower-cased: `mockPrivateKeyData` → mock, private, key, data."""
    return [part.lower() for part in _IDENTIFIER_PARTS.findall(text)]


def fixture_word(text: str) -> str | None:
    """The first word of `text` that says "this is a test value" (mock, fake, dummy…), if any."""
    return next((word for word in identifier_words(text) if word in FIXTURE_WORDS), None)
