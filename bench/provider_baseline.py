"""Benchmark: our provider layer vs a bare SDK streaming call, both against the loopback stub.

Baseline, measured in the same run: the official SDK's streaming call consumed in a plain loop
(``bare_openai_stream`` / ``bare_anthropic_stream`` below -- reuse them in other benchmarks).
Measured: ``Provider.stream`` and ``ProviderRouter.stream`` over the same stub, same reply; all
sides interleaved call by call. (The OpenAI provider sends its body through the SDK's
``client.post`` and reads the chunks as the JSON sent, which skips ``create``'s transform of the
messages and its model per chunk; the Anthropic provider likewise reads its events as sent, through
``client.post`` with the body ``messages.create`` sends: both come out faster than the bare call.
Two more sides, the same ``client.post`` calls in a plain loop, give our providers' own cost:
``ratio openai_provider_over_sdk_post`` and ``ratio anthropic_provider_over_sdk_post``.)

    .venv/bin/python bench/provider_baseline.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import anthropic
import openai
from anthropic.types import Message
from openai.types.chat import ChatCompletion

from bench.common import goal, machine, median, pct
from core.providers.anthropic_provider import AnthropicProvider
from core.providers.base import ChatMessage, ProviderTimeouts
from core.providers.openai_provider import OpenAIProvider
from core.providers.router import ProviderRouter
from tests.stubs.provider_server import ProviderStubServer, Reply

SYSTEM = "You are a pragmatic engineering advisor. " * 20
QUESTION = "Should we split the monolith this quarter, given a team of twelve?"
REPLY = Reply(text=" ".join(["word"] * 200), input_tokens=400, output_tokens=200)
TARGET_OVERHEAD_RATIO = 1.15


def bare_openai_stream(client: openai.OpenAI, model: str, system: str, question: str) -> str:
    """The baseline: the SDK's streaming call and nothing else."""
    parts: list[str] = []
    with client.chat.completions.create(
        model=model,
        messages=[{"role": "system", "content": system}, {"role": "user", "content": question}],
        stream=True,
        stream_options={"include_usage": True},
    ) as stream:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
    return "".join(parts)


def bare_openai_post_stream(client: openai.OpenAI, model: str, system: str, question: str) -> str:
    """The SDK call our OpenAI provider makes (``client.post``, chunks as sent), in a plain loop."""
    parts: list[str] = []
    with client.post(
        "/chat/completions",
        body={"model": model, "stream": True,
              "messages": [{"role": "system", "content": system}, {"role": "user", "content": question}],
              "stream_options": {"include_usage": True}},
        options={"security": {"bearer_auth": True}},
        cast_to=ChatCompletion,
        stream=True,
        stream_cls=openai.Stream[object],
    ) as stream:
        for chunk in stream:
            choices = chunk.get("choices")  # type: ignore[attr-defined]
            if choices and choices[0]["delta"].get("content"):
                parts.append(choices[0]["delta"]["content"])
    return "".join(parts)


def bare_anthropic_post_stream(client: anthropic.Anthropic, model: str, system: str, question: str) -> str:
    """The SDK call our Anthropic provider makes (``client.post``, events as sent), in a plain loop."""
    parts: list[str] = []
    with client.post(
        "/v1/messages",
        body={"max_tokens": 1024, "messages": [{"role": "user", "content": question}], "model": model,
              "stream": True, "system": system},
        cast_to=Message,
        stream=True,
        stream_cls=anthropic.Stream[object],
    ) as stream:
        for event in stream:
            if event.get("type") == "content_block_delta":  # type: ignore[attr-defined]
                delta = event["delta"]  # type: ignore[index]
                if delta.get("type") == "text_delta":
                    parts.append(delta["text"])
    return "".join(parts)


def bare_anthropic_stream(client: anthropic.Anthropic, model: str, system: str, question: str) -> str:
    parts: list[str] = []
    with client.messages.create(
        model=model,
        max_tokens=1024,
        system=system,
        messages=[{"role": "user", "content": question}],
        stream=True,
    ) as stream:
        for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                parts.append(event.delta.text)
    return "".join(parts)


def _drain(events: Iterable[object]) -> str:
    return "".join(getattr(e, "text", "") for e in events)


def _time_interleaved(sides: dict[str, Callable[[], str]], n: int) -> dict[str, list[float]]:
    """Each side timed ``n`` times, round-robin (each side first in turn), so that the machine's
    drift during the run falls on all sides alike."""
    for fn in sides.values():
        for _ in range(min(5, n)):
            fn()  # warm up: connections, imports, pydantic models
    names = list(sides)
    out: dict[str, list[float]] = {name: [] for name in names}
    for i in range(n):
        for name in names[i % len(names):] + names[: i % len(names)]:
            t0 = time.perf_counter()
            sides[name]()
            out[name].append((time.perf_counter() - t0) * 1000)
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 30 if args.quick else 200
    print(f"provider baseline on {machine()}, {n} calls each, reply of {len(REPLY.pieces())} chunks")
    timeouts = ProviderTimeouts(connect_s=5, first_token_s=30, total_s=60)
    messages = [ChatMessage("user", QUESTION)]
    with ProviderStubServer() as stub:
        stub.set_reply("*", REPLY)
        oa = openai.OpenAI(base_url=stub.openai_base_url, api_key="not-needed", max_retries=0)
        an = anthropic.Anthropic(base_url=stub.anthropic_base_url, api_key="not-needed", max_retries=0)
        po = OpenAIProvider(model="gpt-4o-mini", base_url=stub.openai_base_url, timeouts=timeouts)
        pa = AnthropicProvider(model="claude-haiku-4-5", base_url=stub.anthropic_base_url, timeouts=timeouts)
        router = ProviderRouter([po, pa])
        results = _time_interleaved(
            {
                "openai bare": lambda: bare_openai_stream(oa, "gpt-4o-mini", SYSTEM, QUESTION),
                "openai post": lambda: bare_openai_post_stream(oa, "gpt-4o-mini", SYSTEM, QUESTION),
                "openai provider": lambda: _drain(po.stream(messages, system=SYSTEM, request_id="b")),
                "openai router": lambda: _drain(router.stream(messages, system=SYSTEM, request_id="b")),
                "anthropic bare": lambda: bare_anthropic_stream(an, "claude-haiku-4-5", SYSTEM, QUESTION),
                "anthropic post": lambda: bare_anthropic_post_stream(an, "claude-haiku-4-5", SYSTEM, QUESTION),
                "anthropic provider": lambda: _drain(pa.stream(messages, system=SYSTEM, request_id="b")),
            },
            n,
        )
    for name, ms in results.items():
        print(f"  {name:<20} p50 {median(ms):7.2f} ms   p95 {pct(ms, 95):7.2f} ms")
    for api in ("openai", "anthropic"):
        ratio = median(results[f"{api} provider"]) / median(results[f"{api} bare"])
        goal(f"{api}_provider_overhead", ratio, "x", "<=", TARGET_OVERHEAD_RATIO)
    ratio = median(results["openai router"]) / median(results["openai bare"])
    goal("router_overhead", ratio, "x", "<=", TARGET_OVERHEAD_RATIO)
    for api in ("openai", "anthropic"):
        own = median(results[f"{api} provider"]) / median(results[f"{api} post"])
        print(f"ratio {api}_provider_over_sdk_post: {own:.3f}x (over the same client.post call in a plain loop)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
