"""The price table: costs per bucket, the Haiku 5.5 long-prompt tier, unknown models, the default model."""

from __future__ import annotations

import pytest
from anthropic.types import Usage

from agents.pricing import PRICES, TokenUsage, UnknownModel, cost, price_of, worst_case_cost
from bot.settings import Settings


def test_each_bucket_is_billed_at_its_own_rate():
    usage = TokenUsage(
        input_tokens=1_000_000,
        output_tokens=1_000_000,
        cache_creation_input_tokens=1_000_000,
        cache_read_input_tokens=1_000_000,
    )
    # Sonnet 4.6: $3 input, $15 output, $3.75 cache write (5 min), $0.30 cache read.
    assert cost("claude-sonnet-4-6", usage) == pytest.approx(3 + 15 + 3.75 + 0.30)
    # Sonnet 5.5: $2, $10, $2.50, $0.10.
    assert cost("claude-sonnet-5-5", usage) == pytest.approx(2 + 10 + 2.50 + 0.10)


def test_cost_reads_the_sdk_usage_and_mappings():
    usage = Usage(input_tokens=1200, output_tokens=300, cache_creation_input_tokens=None, cache_read_input_tokens=800)
    expected = (1200 * 2 + 300 * 10 + 800 * 0.10) / 1_000_000
    assert cost("claude-sonnet-5-5", usage) == pytest.approx(expected)
    assert cost("claude-sonnet-5-5", {"input_tokens": 1200, "output_tokens": 300, "cache_read_input_tokens": 800}) == (
        pytest.approx(expected)
    )


def test_haiku_5_5_prices_a_long_prompt_at_the_higher_tier_for_every_token():
    short = TokenUsage(input_tokens=100_000, output_tokens=1_000)
    long = TokenUsage(input_tokens=60_000, cache_read_input_tokens=40_001, output_tokens=1_000)
    assert cost("claude-haiku-5-5", short) == pytest.approx((100_000 * 0.10 + 1_000 * 0.50) / 1e6)
    assert cost("claude-haiku-5-5", long) == pytest.approx((60_000 * 0.50 + 40_001 * 0.05 + 1_000 * 2.50) / 1e6)


def test_snapshot_ids_share_their_alias_price():
    assert price_of("claude-sonnet-4-5-20250929") is price_of("claude-sonnet-4-5")
    assert price_of("claude-haiku-4-5-20251001") is price_of("claude-haiku-4-5")


def test_an_unknown_model_is_an_error_never_free():
    with pytest.raises(UnknownModel, match="claude-imaginary-9.*agents/pricing.py"):
        cost("claude-imaginary-9", TokenUsage(input_tokens=10))
    with pytest.raises(UnknownModel):
        worst_case_cost("claude-imaginary-9", 10, 10)


def test_the_worst_case_bounds_any_actual_bill_for_the_same_call():
    prompt, max_tokens = 5_000, 800
    for model in PRICES:
        bound = worst_case_cost(model, prompt, max_tokens)
        for usage in (
            TokenUsage(input_tokens=prompt, output_tokens=max_tokens),
            TokenUsage(cache_creation_input_tokens=prompt, output_tokens=max_tokens),
            TokenUsage(input_tokens=1_000, cache_read_input_tokens=prompt - 1_000, output_tokens=max_tokens),
        ):
            assert cost(model, usage) <= bound + 1e-12, model


def test_the_default_model_is_current_and_priced():
    model = Settings().llm_model
    price_of(model)
    # Claude Sonnet 4.5 is deprecated and retires on 2026-11-30.
    assert not model.startswith("claude-sonnet-4-5")
