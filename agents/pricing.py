"""What a Claude call costs: one price row per model, in USD per million tokens.

Source: Anthropic's published prices (https://platform.claude.com/docs/en/about-claude/pricing
and each model's page), checked on 2026-11-23. Update this table, and only this table,
when Anthropic changes a price or ships a model. A model that is not in it is an error
(`UnknownModel`), never a silent zero: a call we cannot price is a call no budget can stop.

Cache writes are billed at the 5-minute rate (the only cache lifetime we ask for).
Each input token falls in exactly one bucket — uncached input, cache write, cache read —
as the API reports them in `usage`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PRICES_CHECKED = "2026-11-23"
PRICES_SOURCE = "https://platform.claude.com/docs/en/about-claude/pricing"


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cache_write: float  # 5-minute cache write
    cache_read: float  # cache hits and refreshes
    # Claude Haiku 5.5 bills every token of a request whose prompt (input + cache writes +
    # cache reads) is over `long_prompt_over` tokens at the `long_prompt` rates, output included.
    long_prompt_over: int | None = None
    long_prompt: Price | None = None

    def for_prompt(self, prompt_tokens: int) -> Price:
        if self.long_prompt is not None and self.long_prompt_over is not None and prompt_tokens > self.long_prompt_over:
            return self.long_prompt
        return self


_FABLE_5_1 = Price(input=10.0, output=50.0, cache_write=12.50, cache_read=0.25)
_FABLE_5 = Price(input=10.0, output=50.0, cache_write=12.50, cache_read=1.00)
_OPUS_5_5 = Price(input=4.0, output=20.0, cache_write=5.0, cache_read=0.20)
_OPUS_4_5_TO_5 = Price(input=5.0, output=25.0, cache_write=6.25, cache_read=0.50)
# Sonnet 5.5 cache reads were halved to $0.10 on 2026-10-07.
_SONNET_5_5 = Price(input=2.0, output=10.0, cache_write=2.50, cache_read=0.10)
_SONNET_5 = Price(input=2.0, output=10.0, cache_write=2.50, cache_read=0.20)
_SONNET_4 = Price(input=3.0, output=15.0, cache_write=3.75, cache_read=0.30)
_HAIKU_5_5 = Price(
    input=0.10,
    output=0.50,
    cache_write=0.125,
    cache_read=0.01,
    long_prompt_over=100_000,
    long_prompt=Price(input=0.50, output=2.50, cache_write=0.625, cache_read=0.05),
)
_HAIKU_4_5 = Price(input=1.0, output=5.0, cache_write=1.25, cache_read=0.10)

PRICES: dict[str, Price] = {
    "claude-fable-5-1": _FABLE_5_1,
    "claude-mythos-5-1": _FABLE_5_1,  # limited availability
    "claude-fable-5": _FABLE_5,
    "claude-mythos-5": _FABLE_5,  # limited availability
    "claude-opus-5-5": _OPUS_5_5,
    "claude-opus-5": _OPUS_4_5_TO_5,
    "claude-opus-4-8": _OPUS_4_5_TO_5,
    "claude-opus-4-7": _OPUS_4_5_TO_5,
    "claude-opus-4-6": _OPUS_4_5_TO_5,
    "claude-opus-4-5": _OPUS_4_5_TO_5,
    "claude-sonnet-5-5": _SONNET_5_5,
    "claude-sonnet-5": _SONNET_5,
    "claude-sonnet-4-6": _SONNET_4,
    "claude-sonnet-4-5": _SONNET_4,  # deprecated: retires 2026-11-30
    "claude-haiku-5-5": _HAIKU_5_5,
    "claude-haiku-4-5": _HAIKU_4_5,
}

_SNAPSHOT_SUFFIX = re.compile(r"-\d{8}$")  # claude-sonnet-4-5-20250929 is claude-sonnet-4-5


class UnknownModel(LookupError):
    def __init__(self, model: str) -> None:
        super().__init__(
            f"no price for model {model!r}: add its row to PRICES in agents/pricing.py "
            f"(known: {', '.join(sorted(PRICES))})"
        )
        self.model = model


def price_of(model: str) -> Price:
    price = PRICES.get(model) or PRICES.get(_SNAPSHOT_SUFFIX.sub("", model))
    if price is None:
        raise UnknownModel(model)
    return price


@dataclass(frozen=True)
class TokenUsage:
    """Tokens of one or more calls, in the buckets the API bills separately."""

    input_tokens: int = 0  # uncached input
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    @classmethod
    def of(cls, usage: Any) -> TokenUsage:
        """From the SDK's `Usage`, a mapping, or a TokenUsage (missing buckets count as 0)."""
        get: Callable[[str], Any] = usage.get if isinstance(usage, dict) else lambda name: getattr(usage, name, None)
        return cls(
            *(
                int(get(name) or 0)
                for name in ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
            )
        )

    @property
    def prompt_tokens(self) -> int:
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_creation_input_tokens + other.cache_creation_input_tokens,
            self.cache_read_input_tokens + other.cache_read_input_tokens,
        )


def cost(model: str, usage: Any) -> float:
    """USD for one call's `usage` (SDK Usage, mapping or TokenUsage) on `model`."""
    tokens = TokenUsage.of(usage)
    price = price_of(model).for_prompt(tokens.prompt_tokens)
    return (
        tokens.input_tokens * price.input
        + tokens.cache_creation_input_tokens * price.cache_write
        + tokens.cache_read_input_tokens * price.cache_read
        + tokens.output_tokens * price.output
    ) / 1_000_000


BATCH_DISCOUNT = 0.5  # the Message Batches API bills every token at half the price


def worst_case_cost(model: str, prompt_tokens: int, max_output_tokens: int) -> float:
    """An upper bound for a call before it is made: every prompt token billed at the dearer
    of input and cache write, and the whole of `max_output_tokens` (thinking included) spent."""
    price = price_of(model).for_prompt(prompt_tokens)
    return (prompt_tokens * max(price.input, price.cache_write) + max_output_tokens * price.output) / 1_000_000
