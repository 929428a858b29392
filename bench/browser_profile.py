"""Where a page's own JavaScript spends a chat turn: Chromium's sampling profiler (the DevTools protocol's
``Profiler`` domain, through Playwright's CDP session) over whole turns, summed by script file.

Used by ``bench/browser_chat.py --browser-profile DIR``: Advisor's page is sampled during turns 1–10 and
the late turns of the first round; each turn's profile is written to ``DIR/<window>-turn-NN.cpuprofile``
(DevTools' Performance panel opens it), and the summary prints, per window, the busy time per turn
and the self time per script file (hashes dropped from the names: ``react-dom``, ``emotion-styled…``,
``StreamlitMarkdown``…), with ``(program)`` for the browser's own work outside JavaScript (style, layout,
paint) and ``(garbage collector)``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SAMPLING_US = 200
_HASHED = re.compile(r"\.[A-Za-z0-9_-]{8}\.js$")  # Streamlit's bundles: name.<hash>.js


def script_name(url: str) -> str:
    """``http://…/static/js/react-dom.Dzbslgj4.js`` → ``react-dom``; an empty URL → ``(native)``."""
    if not url:
        return "(native)"
    return _HASHED.sub("", url.rsplit("/", 1)[-1])


def self_time_by_script(profile: dict[str, Any]) -> Counter[str]:
    """Microseconds of samples per script file (idle time left out)."""
    frames = {node["id"]: node["callFrame"] for node in profile["nodes"]}
    out: Counter[str] = Counter()
    for node_id, delta in zip(profile["samples"], profile["timeDeltas"], strict=True):
        frame = frames[node_id]
        name = frame["functionName"]
        if name == "(idle)":
            continue
        out[name if name.startswith("(") else script_name(frame["url"])] += delta
    return out


class BrowserProfile:
    """Sampling profiles of whole turns of one page, grouped by window (``early``, ``late``)."""

    def __init__(self, page: Any, out: Path) -> None:
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("Profiler.enable")
        self.cdp.send("Profiler.setSamplingInterval", {"interval": SAMPLING_US})
        self.out = out
        self.by_window: dict[str, list[Counter[str]]] = {}
        out.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def turn(self, window: str, number: int) -> Iterator[None]:
        """Sample the page while the block runs (a whole turn: Enter to the page at rest)."""
        self.cdp.send("Profiler.start")
        try:
            yield
        finally:
            profile = self.cdp.send("Profiler.stop")["profile"]
            (self.out / f"{window}-turn-{number:02d}.cpuprofile").write_text(json.dumps(profile))
            self.by_window.setdefault(window, []).append(self_time_by_script(profile))

    def summary(self, top: int = 8) -> list[str]:
        lines = [f"browser profile (Chromium sampling, {SAMPLING_US} µs; whole turns, ms per turn):"]
        for window, turns in self.by_window.items():
            total: Counter[str] = Counter()
            for counts in turns:
                total.update(counts)
            busy = sum(total.values()) / 1000 / len(turns)
            parts = ", ".join(f"{name} {us / 1000 / len(turns):.1f}" for name, us in total.most_common(top))
            lines.append(f"browser profile: {window} ({len(turns)} turns): busy {busy:.1f} ms: {parts}")
        return lines
