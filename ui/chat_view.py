"""Small presentation helpers for the chat page."""

from __future__ import annotations

from core.atoms import app_atoms
from core.chat import TurnResult
from core.pricing import format_cost
from models import AgentRun


def agent_choices() -> dict[str, tuple[str, str]]:
    """Advisor modes from the atoms' agents: id → (title, description)."""
    return {a_id: (title, desc) for a_id, title, desc in app_atoms().agents()}


def meta_line(run: AgentRun | TurnResult) -> str:
    """provider · model · tokens · cost · latency, and "fell back from X" when it did."""
    if isinstance(run, TurnResult):
        provider, model, fallback = run.provider, run.model, ",".join(run.fallback_from) or None
        tokens_in = run.usage.total_input_tokens if run.usage else None
        tokens_out = run.usage.output_tokens if run.usage else None
        cost, latency, ttft = run.cost_usd, run.latency_ms, run.ttft_ms
    else:
        provider, model, fallback = run.provider, run.model, run.fallback_from
        tokens_in = None if run.input_tokens is None else (
            run.input_tokens + (run.cached_input_tokens or 0) + (run.cache_write_tokens or 0))
        tokens_out = run.output_tokens
        cost, latency, ttft = run.cost_usd, run.latency_ms, run.ttft_ms
    if provider is None:
        return "no provider answered"
    parts = [provider, model or "?"]
    if tokens_in is not None or tokens_out is not None:
        parts.append(f"{tokens_in or 0:,} in / {tokens_out or 0:,} out tokens")
    parts.append(format_cost(cost))
    if latency is not None:
        parts.append(f"{latency / 1000:.1f} s" + (f" (first token {ttft} ms)" if ttft is not None else ""))
    line = " · ".join(parts)
    if fallback:
        line += f" · fell back from {fallback}"
    return line
