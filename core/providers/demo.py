"""The offline ``demo`` provider: used only when no real provider is configured.

Deterministic (same input → same answer), derived from the input, streamed word by word with
``demo_delay_ms`` between chunks. Token counts are estimates (~4 characters per token); the
``demo`` model costs 0 in ``pricing.toml``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Sequence

from core.providers.base import ChatMessage, Done, ProviderEvent, TextDelta, Usage

_TOPICS: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("hire", "hiring", "recruit", "headcount", "interview"),
        "For hiring questions I would look at the role's first 90 days, the interview loop's signal, "
        "and whether the budget matches the market for that seniority.",
    ),
    (
        ("architecture", "microservice", "monolith", "database", "scal", "latency"),
        "For architecture questions I would start from the load you expect in a year, the team that "
        "will own it, and the cheapest design that survives both.",
    ),
    (
        ("incident", "outage", "postmortem", "post-mortem", "downtime", "on-call"),
        "For an incident review I would separate the timeline, the contributing factors and the "
        "follow-ups with owners, and keep it blameless.",
    ),
    (
        ("price", "pricing", "revenue", "margin", "churn"),
        "For pricing I would compare value delivered per segment, the cost to serve, and what the "
        "closest alternatives charge.",
    ),
    (
        ("board", "investor", "okr", "roadmap", "quarter"),
        "For a board or roadmap update I would lead with the two numbers that moved, the one risk, "
        "and the decision you need.",
    ),
)


def estimate_tokens(text: str) -> int:
    """A rough token estimate (~4 characters per token), at least 1 for non-empty text."""
    return (len(text) + 3) // 4


class DemoProvider:
    name = "demo"
    model = "demo"

    def __init__(self, *, delay_ms: int = 15, sleep: Callable[[float], object] | None = None) -> None:
        self._delay_s = max(0, delay_ms) / 1000.0
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait

    def __repr__(self) -> str:
        return f"DemoProvider(delay_ms={int(self._delay_s * 1000)})"

    def answer(self, messages: Sequence[ChatMessage], system: str) -> str:
        """The full (deterministic) reply for this input."""
        question = next((m.content for m in reversed(messages) if m.role == "user"), "").strip()
        mode = _mode(system)
        summary = _summary(question)
        prior = sum(1 for m in messages if m.role == "user") - (1 if question else 0)
        parts = [
            "This is the offline demo provider: no language model is configured, so this answer is "
            "generated locally from your message.",
            f"Advisor mode: {mode}." if mode else "",
            f'I understood your question as: "{summary}" ({len(question.split())} words'
            + (
                f", after {prior} earlier question{'s' if prior != 1 else ''} in this conversation)."
                if prior
                else ")."
            ),
        ]
        lowered = question.lower()
        parts += [advice for keys, advice in _TOPICS if any(k in lowered for k in keys)][:2]
        parts.append(
            "For real advice, configure a provider: set ADVISOR_OPENAI_API_KEY or ADVISOR_ANTHROPIC_API_KEY "
            "(or ADVISOR_OPENAI_BASE_URL for a local OpenAI-compatible server such as Ollama)."
        )
        return " ".join(p for p in parts if p)

    def stream(
        self, messages: Sequence[ChatMessage], *, system: str, request_id: str
    ) -> Iterator[ProviderEvent]:
        text = self.answer(messages, system)
        words = re.findall(r"\S+\s*", text)
        for i, word in enumerate(words):
            if i and self._delay_s:
                self._sleep(self._delay_s)
            yield TextDelta(word)
        prompt = system + "".join(m.content for m in messages)
        yield Usage(input_tokens=estimate_tokens(prompt), output_tokens=estimate_tokens(text))
        yield Done(stop_reason="end_turn", provider_request_id=f"demo-{request_id}")


def _mode(system: str) -> str:
    """The advisor mode named by the system prompt: its ``# Mode: …`` heading (agent atoms), else ""."""
    for line in system.splitlines():
        stripped = line.strip().lstrip("#").strip()
        if line.lstrip().startswith("#") and stripped.lower().startswith("mode:"):
            return _clip(stripped[5:].strip(), 80)
    return ""


def _summary(question: str) -> str:
    if not question:
        return "(empty message)"
    first = re.split(r"(?<=[.!?])\s", " ".join(question.split()), maxsplit=1)[0]
    return _clip(first, 160)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
