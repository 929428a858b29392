"""The peer in the chat-turn benchmark: LiteLLM's Router versus a bare SDK call, same stub, same run.

Run by ``bench/turn_overhead.py --peer`` in its own virtualenv (``make peer-venv``:
``bench/peer-requirements.txt``), so LiteLLM and its dependencies never enter the app's
environment. It reads the request body our turn sent, then times ``pairs`` interleaved pairs
against the loopback stub that ``turn_overhead`` serves:

* bare: the official ``openai`` SDK's Chat Completions call, ``stream=True`` with
  ``stream_options.include_usage``, consumed in a plain loop (as in ``turn_overhead``);
* peer: ``litellm.Router`` (one deployment: ``openai/<model>`` at the stub's base URL),
  ``router.completion(..., stream=True, stream_options={"include_usage": True})``, consumed the same way.

It prints one JSON line: the p50 of the per-pair differences (time to the first text delta and to
the end of the stream), the sides' own p50s, and how long the process took to become quiet after a
LiteLLM call (its callbacks on background threads; every measurement starts from a quiet process).

Loopback only: LiteLLM would fetch its model price map from GitHub when imported, so the local copy
is forced (``LITELLM_LOCAL_MODEL_COST_MAP``), telemetry is off, and an audit hook refuses every
socket connection and name lookup that is not to a loopback address before it is made.

    <peer python> bench/peer_litellm.py --base-url http://127.0.0.1:PORT/v1 --body body.json --pairs 200
"""

from __future__ import annotations

import argparse
import gc
import ipaddress
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

LOOPBACK_NAMES = {"localhost", "ip6-localhost", "ip6-loopback"}


def _is_loopback(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


REFUSED: list[str] = []  # reported in the result: a peer that tried to go elsewhere is named


def _loopback_only(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.getaddrinfo" and not _is_loopback(args[0]):
        REFUSED.append(f"lookup {args[0]!r}")
        raise PermissionError(f"peer bench: name lookup of {args[0]!r} refused (loopback only)")
    if event == "socket.connect":
        address = args[1]
        if isinstance(address, tuple) and address and not _is_loopback(address[0]):
            REFUSED.append(f"connect {address!r}")
            raise PermissionError(f"peer bench: connection to {address!r} refused (loopback only)")


def _pct50(values: list[float]) -> float:
    return statistics.median(values)


def _quiesce(limit_s: float = 2.0) -> float:
    """Wait until this process uses no CPU (< 0.5 ms in 10 ms) and return how long that took, in ms.

    LiteLLM finishes a streamed call with work on background threads (its success and logging
    callbacks), which went on into the next measurement and slowed the bare call after it (bare
    time to the first token 19 ms here, against 3 ms without LiteLLM's calls in between). Every
    measurement starts from a quiet process; the wait is reported, not counted in either side.
    """
    start = time.perf_counter()
    while time.perf_counter() - start < limit_s:
        cpu = time.process_time()
        time.sleep(0.01)
        if time.process_time() - cpu < 0.0005:
            break
    return (time.perf_counter() - start) * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--body", required=True, help="JSON file: {model, messages}")
    ap.add_argument("--pairs", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    args = ap.parse_args()
    if not _is_loopback(args.base_url.split("//", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0].strip("[]")):
        raise SystemExit("the stub must be on a loopback address")
    sys.addaudithook(_loopback_only)
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    os.environ["LITELLM_TELEMETRY"] = "False"

    import litellm
    import openai

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    with open(args.body, encoding="utf-8") as fh:
        body = json.load(fh)
    model, messages = body["model"], body["messages"]
    key = "sk-bench-not-a-real-key-000000000000"
    client = openai.OpenAI(base_url=args.base_url, api_key=key, max_retries=0)
    router = litellm.Router(
        model_list=[{"model_name": model,
                     "litellm_params": {"model": f"openai/{model}", "api_base": args.base_url, "api_key": key}}],
        num_retries=0,
    )

    def timed(open_stream: Callable[[], Iterator[Any]]) -> tuple[float, float]:
        """(time to the first text delta, time to the end) of one streamed call, in ms."""
        t0 = time.perf_counter()
        first = None
        for chunk in open_stream():
            if first is None and chunk.choices and chunk.choices[0].delta.content:
                first = time.perf_counter()
        end = time.perf_counter()
        if first is None:
            raise RuntimeError("a streamed call got no text")
        return (first - t0) * 1000, (end - t0) * 1000

    def bare_stream() -> Iterator[Any]:
        with client.chat.completions.create(model=model, messages=messages, stream=True,
                                            stream_options={"include_usage": True}) as stream:
            yield from stream

    def peer_stream() -> Iterator[Any]:
        yield from router.completion(model=model, messages=messages, stream=True,
                                     stream_options={"include_usage": True})

    def bare() -> tuple[float, float]:
        return timed(bare_stream)

    def peer() -> tuple[float, float]:
        return timed(peer_stream)

    for _ in range(args.warmup):
        bare()
        peer()
    gc.collect()
    b: list[tuple[float, float]] = []
    p: list[tuple[float, float]] = []
    settle: list[float] = []  # the wait for a quiet process after each peer call
    for i in range(args.pairs):
        if i % 2 == 0:
            _quiesce()
            b.append(bare())
            _quiesce()
            p.append(peer())
            settle.append(_quiesce())
        else:
            _quiesce()
            p.append(peer())
            settle.append(_quiesce())
            b.append(bare())
    print(json.dumps({
        "peer": f"litellm {getattr(litellm, '__version__', None) or _version('litellm')} Router",
        "openai": openai.__version__,
        "pairs": args.pairs,
        "bare_ttft_p50_ms": _pct50([x[0] for x in b]),
        "bare_total_p50_ms": _pct50([x[1] for x in b]),
        "peer_ttft_p50_ms": _pct50([x[0] for x in p]),
        "peer_total_p50_ms": _pct50([x[1] for x in p]),
        "added_ttft_p50_ms": _pct50([y[0] - x[0] for x, y in zip(b, p, strict=True)]),
        "added_total_p50_ms": _pct50([y[1] - x[1] for x, y in zip(b, p, strict=True)]),
        "settle_after_peer_p50_ms": _pct50(settle),
        "refused": sorted(set(REFUSED)),
    }))
    return 0


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


if __name__ == "__main__":
    raise SystemExit(main())
