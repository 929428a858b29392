"""Pricing arithmetic (exact Decimal), cached / cache-write / tiered rates, unknown models."""

from __future__ import annotations

import logging
from datetime import date
from decimal import Decimal

import pytest

from core.pricing import PricingError, cost_usd, load_price_table, parse_price_table
from core.providers.base import Usage

TABLE = parse_price_table(
    """
effective = "2026-11-01"

[models.plain]
input = 2.50
output = 10.00

[models.cachey]
aliases = ["cachey-2026-01-01"]
input = 3.00
output = 15.00
cached_input = 0.30
cache_write = 3.75

[[models.cachey.tiers]]
above_input_tokens = 200000
input = 6.00
output = 22.50
cached_input = 0.60
cache_write = 7.50
"""
)


def test_plain_input_and_output():
    usage = Usage(input_tokens=1_000, output_tokens=500)
    assert cost_usd("plain", usage, table=TABLE) == Decimal("0.0075")  # 1000*2.5/1e6 + 500*10/1e6


def test_missing_cache_rates_default_to_input_rate():
    usage = Usage(
        input_tokens=0, output_tokens=0, cached_input_tokens=1_000_000, cache_write_tokens=1_000_000
    )
    assert cost_usd("plain", usage, table=TABLE) == Decimal("5.00")


def test_cached_tokens_are_priced_only_at_the_cached_rate():
    usage = Usage(input_tokens=1_000, output_tokens=100, cached_input_tokens=9_000, cache_write_tokens=2_000)
    # 1000*3 + 9000*0.30 + 2000*3.75 + 100*15 = 3000 + 2700 + 7500 + 1500 = 14700 → /1e6
    assert cost_usd("cachey", usage, table=TABLE) == Decimal("0.0147")
    assert cost_usd("cachey-2026-01-01", usage, table=TABLE) == Decimal("0.0147")


def test_tier_applies_to_the_whole_request_above_the_threshold():
    at = Usage(input_tokens=150_000, output_tokens=1_000, cached_input_tokens=50_000)  # total input 200000
    above = Usage(input_tokens=150_001, output_tokens=1_000, cached_input_tokens=50_000)
    # at the threshold: base rates. 150000*3 + 50000*0.3 + 1000*15 = 450000+15000+15000
    assert cost_usd("cachey", at, table=TABLE) == Decimal("0.48")
    # above: every token at tier rates. 150001*6 + 50000*0.6 + 1000*22.5 = 900006+30000+22500
    assert cost_usd("cachey", above, table=TABLE) == Decimal("0.952506")


def test_tier_counts_cache_writes_toward_the_threshold():
    usage = Usage(input_tokens=100_000, output_tokens=0, cache_write_tokens=100_001)
    assert (
        cost_usd("cachey", usage, table=TABLE)
        == Decimal("100000") * 6 / 10**6 + Decimal("100001") * Decimal("7.5") / 10**6
    )


def test_arithmetic_is_exact_decimal():
    usage = Usage(input_tokens=1, output_tokens=1, cached_input_tokens=1, cache_write_tokens=1)
    result = cost_usd("cachey", usage, table=TABLE)
    assert isinstance(result, Decimal)
    assert result == Decimal("0.00002205")  # (3 + 15 + 0.3 + 3.75) / 1e6, no float residue


def test_unknown_model_is_none_with_a_warning(caplog: pytest.LogCaptureFixture):
    with caplog.at_level(logging.WARNING, logger="advisor.pricing"):
        assert cost_usd("llama-3.1-70b-local", Usage(10, 10), table=TABLE) is None
    [record] = [r for r in caplog.records if r.name == "advisor.pricing"]
    assert record.levelno == logging.WARNING
    assert "llama-3.1-70b-local" in record.getMessage()


def test_shipped_table_is_dated_and_prices_the_default_models():
    table = load_price_table()
    assert table.effective == date(2026, 11, 1)
    for model in ("gpt-4o-mini", "claude-sonnet-4-5", "claude-haiku-4-5", "gpt-5"):
        assert table.price(model) is not None, model
    assert cost_usd("demo", Usage(10_000, 10_000, 5, 5)) == 0
    sonnet = table.price("claude-sonnet-4-5")
    assert sonnet is not None and sonnet.tiers[0][0] == 200_000
    # the real OpenAI semantics: a cached token is cheaper than a fresh one
    mini = Usage(input_tokens=0, output_tokens=0, cached_input_tokens=1_000_000)
    assert cost_usd("gpt-4o-mini", mini) == Decimal("0.075")


@pytest.mark.parametrize(
    "text",
    [
        "models = {}",  # no effective date
        'effective = "2026-11-01"\n[models.x]\ninput = 1\n',  # no output rate
        'effective = "2026-11-01"\n[models.x]\ninput = -1\noutput = 1\n',
        'effective = "2026-11-01"\n[models.x]\ninput = 1\noutput = 1\ninptu = 2\n',
        'effective = "2026-11-01"\n[models.x]\ninput = 1\noutput = 1\naliases = ["y"]\n'
        "[models.y]\ninput = 1\noutput = 1\n",
        # a misspelt rate in a tier (it would fall back to the tier's input rate)
        'effective = "2026-11-01"\n[models.x]\ninput = 1\noutput = 1\n'
        "[[models.x.tiers]]\nabove_input_tokens = 10\ninput = 2\noutput = 2\ncache_writes = 3\n",
        # aliases as one string (it would price the models "y", "z")
        'effective = "2026-11-01"\n[models.x]\ninput = 1\noutput = 1\naliases = "yz"\n',
    ],
)
def test_malformed_tables_fail_loudly(text: str):
    with pytest.raises(PricingError):
        parse_price_table(text)
