"""Small presentation helpers for the chat page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.atoms import app_atoms
from core.chat import TurnResult
from core.pricing import format_cost
from core.run_leases import server_stopped
from models import AgentRun

SERVER_STOPPED = "Interrupted: the server stopped while answering."


@dataclass(frozen=True)
class RunNotice:
    """What the chat says under a stored answer that is not complete. ``kind``: ``progress`` (a
    caption: the answer is still being written by a live process), ``interrupted`` or ``failed`` (a
    warning, with Retry on the conversation's last turn)."""

    kind: Literal["progress", "interrupted", "failed"]
    text: str


def run_notice(run: AgentRun) -> RunNotice | None:
    """The notice for ``run`` (None for a complete answer). A pending run whose process has stopped
    (its heartbeat went stale, ``core.run_leases``) reads as interrupted before the sweep closes it."""
    if server_stopped(run):
        return RunNotice("interrupted", f"{SERVER_STOPPED} Your message and the partial answer are saved. "
                                        f"Reference {run.request_id}.")
    if run.status == "pending":
        return RunNotice("progress", "Answer in progress…")
    if run.status != "ok":
        return RunNotice("failed", f"This answer did not complete ({run.error_code or run.status}). "
                                   f"Reference {run.request_id}.")
    return None


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
    if provider is None:  # a partial answer from before providers were recorded with checkpoints
        return "provider not recorded" if run.output else "no provider answered"
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
