"""Cost of a run from ``pricing.toml``: exact Decimal arithmetic; unknown model → None, never a guess."""

from __future__ import annotations

import logging
import threading
import tomllib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from core.providers.base import Usage

log = logging.getLogger("advisor.pricing")

PRICING_FILE = Path(__file__).resolve().parent.parent / "pricing.toml"
_PER = Decimal(1_000_000)
_RATE_FIELDS = ("input", "output", "cached_input", "cache_write")


class PricingError(ValueError):
    """``pricing.toml`` is malformed (raised at load, so a bad table fails loudly at start)."""


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per 1M tokens."""

    input: Decimal
    output: Decimal
    cached_input: Decimal
    cache_write: Decimal

    def cost(self, usage: Usage) -> Decimal:
        total = (
            self.input * usage.input_tokens
            + self.cached_input * usage.cached_input_tokens
            + self.cache_write * usage.cache_write_tokens
            + self.output * usage.output_tokens
        )
        return total / _PER


@dataclass(frozen=True, slots=True)
class ModelPrice:
    base: Rates
    tiers: tuple[tuple[int, Rates], ...] = ()  # (above_input_tokens, rates), ascending

    def rates_for(self, usage: Usage) -> Rates:
        """Tier rates apply to the whole request once its total input exceeds the threshold."""
        chosen = self.base
        for threshold, rates in self.tiers:
            if usage.total_input_tokens > threshold:
                chosen = rates
        return chosen


@dataclass(frozen=True, slots=True)
class PriceTable:
    effective: date
    models: dict[str, ModelPrice]

    def price(self, model: str) -> ModelPrice | None:
        return self.models.get(model)


def _rates(raw: dict[str, Any], where: str) -> Rates:
    try:
        base_in = _dec(raw["input"], f"{where}.input")
        out = _dec(raw["output"], f"{where}.output")
    except KeyError as exc:
        raise PricingError(f"{where}: missing {exc.args[0]}") from None
    return Rates(
        input=base_in,
        output=out,
        cached_input=_dec(raw.get("cached_input", base_in), f"{where}.cached_input"),
        cache_write=_dec(raw.get("cache_write", base_in), f"{where}.cache_write"),
    )


def _dec(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise PricingError(f"{where}: not a number")
    try:
        result = Decimal(value)
    except ArithmeticError:
        raise PricingError(f"{where}: not a number") from None
    if not result.is_finite() or result < 0:
        raise PricingError(f"{where}: must be a finite number >= 0")
    return result


def parse_price_table(text: str) -> PriceTable:
    data = tomllib.loads(text, parse_float=Decimal)  # floats stay exact
    effective = data.get("effective")
    if isinstance(effective, str):
        effective = date.fromisoformat(effective)
    if not isinstance(effective, date):
        raise PricingError("`effective` (a date) is required")
    models: dict[str, ModelPrice] = {}
    for name, raw in (data.get("models") or {}).items():
        if not isinstance(raw, dict):
            raise PricingError(f"models.{name}: not a table")
        unknown = set(raw) - {*_RATE_FIELDS, "tiers", "aliases"}
        if unknown:
            raise PricingError(f"models.{name}: unknown field(s) {', '.join(sorted(unknown))}")
        tiers: list[tuple[int, Rates]] = []
        for i, tier in enumerate(raw.get("tiers") or []):
            where = f"models.{name}.tiers[{i}]"
            if not isinstance(tier, dict):
                raise PricingError(f"{where}: not a table")
            unknown = set(tier) - {*_RATE_FIELDS, "above_input_tokens"}
            if unknown:  # e.g. a misspelt rate would silently fall back to the tier's input rate
                raise PricingError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
            threshold = tier.get("above_input_tokens")
            if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 0:
                raise PricingError(f"models.{name}.tiers[{i}]: above_input_tokens must be an integer >= 0")
            tiers.append((threshold, _rates(tier, f"models.{name}.tiers[{i}]")))
        price = ModelPrice(base=_rates(raw, f"models.{name}"), tiers=tuple(sorted(tiers, key=lambda t: t[0])))
        aliases = raw.get("aliases") or []
        if not isinstance(aliases, list) or not all(isinstance(a, str) and a for a in aliases):
            raise PricingError(f"models.{name}.aliases: must be a list of model ids (strings)")
        for key in (name, *aliases):
            if key in models:
                raise PricingError(f"model id {key!r} is priced twice")
            models[key] = price
    return PriceTable(effective=effective, models=models)


def load_price_table(path: Path = PRICING_FILE) -> PriceTable:
    return parse_price_table(path.read_text(encoding="utf-8"))


_lock = threading.Lock()
_table: PriceTable | None = None


def price_table() -> PriceTable:
    """The process-wide table from ``pricing.toml`` (loaded once)."""
    global _table
    with _lock:
        if _table is None:
            _table = load_price_table()
        return _table


def reset_price_table() -> None:
    """For tests: reload ``pricing.toml`` on next use."""
    global _table
    with _lock:
        _table = None


def cost_usd(model: str, usage: Usage, *, table: PriceTable | None = None) -> Decimal | None:
    """Exact USD cost of one request; ``None`` (and a WARNING on ``advisor.pricing``) for an unknown model."""
    price = (table or price_table()).price(model)
    if price is None:
        log.warning("no price for model %r in pricing.toml; cost recorded as unknown", model)
        return None
    return price.rates_for(usage).cost(usage)


def format_cost(value: Decimal | None) -> str:
    """A run's cost as people read it: "$0", fractions of a cent to six places, cents to four,
    dollars to two; "cost unknown" when it was not recorded (never a guess)."""
    if value is None:
        return "cost unknown"
    if value == 0:
        return "$0"
    if value < Decimal("0.01"):
        return f"${value:.6f}"  # a short answer costs fractions of a cent: show them
    return f"${value:.4f}" if value < 1 else f"${value:,.2f}"
