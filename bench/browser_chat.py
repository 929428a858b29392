"""Enter → first answer characters on screen, in Chromium: Advisor's chat page against the 20-line
Streamlit chat of bench/baseline_chat.py, both answered at once by the same loopback provider stub.

    python -m bench.browser_chat [--quick] [--turns 50] [--rounds N] [--profile DIR] [--browser-profile DIR]

Starts the provider stub, Advisor (``streamlit run streamlit_app.py``) on a fresh PostgreSQL database
with both providers pointed at the stub, and the baseline page (``streamlit run
bench/baseline_chat.py``, same Streamlit configuration: both run from the repository root). Drives
both in headless Chromium (Playwright, Debian's ``/usr/bin/chromium``), turn by turn interleaved
(which page goes first alternates), each round in a fresh browser context: a new Advisor account and
conversation, a new baseline session.

The time is taken inside each page: a ``keydown`` listener notes when Enter is pressed in the chat
input, and a ``MutationObserver`` when text holding this turn's marker enters the DOM. Each answer
starts with a marker made for its turn alone, so an earlier answer never matches.

Printed: p50 / p95 / max per page for turns 1–10 and 41–50 (with ``--turns`` < 50, the last ten) of
a conversation, over every round, their ratios, the load average, and the goals (issue #22):
Advisor's p50 ≤ 1.1× the baseline's and p95 ≤ 1.5× over all turns, and Advisor's p50 at the late
turns ≤ 1.2× its p50 at turns 1–10.

``--app-option runner.postScriptGC=true`` runs Advisor with a Streamlit option changed (the
baseline keeps the repository's configuration), to measure what one option costs.

``--profile DIR`` samples the Advisor process with py-spy (requirements-dev.txt) during the first
round and writes ``DIR/advisor.raw`` (collapsed stacks) and prints the functions that take the
largest share of the samples: where the submit path spends its time.

``--browser-profile DIR`` samples Advisor's page with Chromium's own profiler during turns 1–10 and
the late turns of the first round (``bench/browser_profile.py``): per-turn ``.cpuprofile`` files and the
busy time per turn by script file, for where the browser spends its part.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.browser_profile import BrowserProfile
from bench.common import create_database, drop_database, goal, machine, pct

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("ADVISOR_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync",
                 "--disable-renderer-backgrounding", "--disable-background-timer-throttling"]
PASSWORD = "bench-password-42!"
START_TIMEOUT_S = 90.0
STEP_TIMEOUT_MS = 30_000
SETTLE_MS = 300  # after a turn: no WebSocket message for this long while the app shows idle
ANSWER_WORDS = ("Start with the smallest slice that ships, measure what users do with it, "
                "then widen the scope one step at a time. That is the plan.")

# In each page: Enter in the chat input, and the first DOM text holding the awaited marker.
TIMING_SCRIPT = """
(() => {
  const b = window.__bench = {marker: null, enterAt: null, seenAt: null, wsLast: 0};
  const holds = (node) => node && node.textContent && node.textContent.includes(b.marker);
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && b.marker && b.enterAt === null
        && e.target && e.target.matches && e.target.matches('[data-testid=stChatInputTextArea]'))
      b.enterAt = performance.now();
  }, true);
  new MutationObserver((records) => {
    if (!b.marker || b.enterAt === null || b.seenAt !== null) return;
    for (const r of records) {
      if ((r.type === 'characterData' && holds(r.target)) || [...r.addedNodes].some(holds)) {
        b.seenAt = performance.now();
        return;
      }
    }
  }).observe(document, {subtree: true, childList: true, characterData: true});
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', () => { b.wsLast = performance.now(); });
    }
  };
})();
"""
SETTLED = """(quiet) => {
  const app = document.querySelector('[data-testid=stApp]');
  return app && app.getAttribute('data-test-script-state') === 'notRunning'
    && performance.now() - window.__bench.wsLast > quiet;
}"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http_ok(url: str, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1.0) as resp:  # loopback only
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer {url} within {START_TIMEOUT_S:.0f} s")


@contextmanager
def process(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ADVISOR_", "STREAMLIT_", "BENCH_"))}
    env.update({"HOME": str(home), "PYTHONUNBUFFERED": "1", **extra})
    return env


def streamlit_command(script: str, port: int) -> list[str]:
    return [sys.executable, "-m", "streamlit", "run", script, "--server.port", str(port),
            "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]


class Stub:
    """``python -m tests.stubs.provider_server`` on a free loopback port, steered over HTTP."""

    def __init__(self, url: str) -> None:
        self.url = url

    def reply(self, text: str) -> None:
        body = json.dumps({"api": "*", "reply": {"text": text, "input_tokens": 60}}).encode()
        req = urllib.request.Request(f"{self.url}/_control/reply", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as resp:  # loopback only
            resp.read()


@dataclass
class Samples:
    by_turn: dict[int, list[float]] = field(default_factory=dict)

    def add(self, turn: int, ms: float) -> None:
        self.by_turn.setdefault(turn, []).append(ms)

    def window(self, first: int, last: int) -> list[float]:
        return [ms for t, values in self.by_turn.items() if first <= t <= last for ms in values]

    def all(self) -> list[float]:
        return [ms for values in self.by_turn.values() for ms in values]


class ChatPage:
    """One page in its own browser context: type a message, time Enter → the marker on screen."""

    def __init__(self, browser: Any, url: str, name: str) -> None:
        self.name = name
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.page = self.context.new_page()
        self.page.set_default_timeout(STEP_TIMEOUT_MS)
        self.page.add_init_script(TIMING_SCRIPT)
        self.url = url

    def open(self) -> None:
        self.page.goto(self.url)
        self.page.locator("[data-testid=stChatInputTextArea]").wait_for()
        self.settle()

    def settle(self) -> None:
        self.page.wait_for_function(SETTLED, arg=SETTLE_MS)

    def turn(self, stub: Stub, text: str) -> float:
        marker = f"m{uuid.uuid4().hex[:12]}"
        stub.reply(f"{marker} {ANSWER_WORDS}")
        self.page.evaluate("(m) => Object.assign(window.__bench, {marker: m, enterAt: null, seenAt: null})",
                           marker)
        box = self.page.locator("[data-testid=stChatInputTextArea]")
        box.fill(text)
        box.press("Enter")
        self.page.wait_for_function("() => window.__bench.seenAt !== null")
        ms = float(self.page.evaluate("window.__bench.seenAt - window.__bench.enterAt"))
        self.page.wait_for_function("(m) => document.body.textContent.includes(m + ' ' + 'Start with') "
                                    "&& document.body.textContent.includes('That is the plan.')", arg=marker)
        self.settle()
        return ms

    def close(self) -> None:
        self.context.close()


def sign_up(page: Any, url: str, email: str) -> None:
    """Create an account on the create-account page; it lands on the chat."""
    page.goto(f"{url}/signup")
    form = page.locator("form", has=page.get_by_role("button", name="Create account"))
    form.get_by_label("Email", exact=True).fill(email)
    form.get_by_label("Password", exact=True).fill(PASSWORD)
    form.get_by_label("Repeat password", exact=True).fill(PASSWORD)
    form.get_by_role("button", name="Create account").click()
    page.locator("[data-testid=stChatInputTextArea]").wait_for()


@contextmanager
def py_spy(pid: int, out: Path) -> Iterator[None]:
    """py-spy record of ``pid`` (collapsed stacks) while the block runs."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    proc = subprocess.Popen([exe, "record", "--pid", str(pid), "--rate", "250", "--format", "raw",
                             "--nonblocking", "--output", str(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    time.sleep(1.0)  # attached before the first turn
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _frame_name(frame: str) -> str:
    """``func (path/file.py:12)`` → ``func (path/file.py)``."""
    return frame.rsplit(":", 1)[0] + ")" if frame.endswith(")") and ":" in frame else frame


def profile_summary(raw: Path, top: int = 12) -> list[str]:
    """Where the script runs spent their samples: the functions in the largest share (inclusive;
    the wrappers every sample passes through left out) and the leaf functions (self time)."""
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit() or "_run_script" not in stack:  # script-runner threads only
            continue
        frames = [_frame_name(f) for f in stack.split(";")]
        n = int(count)
        total += n
        for name in set(frames):
            inclusive[name] += n
        leaf[frames[-1]] += n
    lines = [f"profile: {total} samples of script runs (py-spy, 250 Hz); inclusive share:"]
    shown = [(name, n) for name, n in inclusive.most_common() if n < 0.97 * total][:top]
    lines += [f"profile: {100 * n / max(total, 1):5.1f}%  {name}" for name, n in shown]
    lines.append("profile: self share:")
    lines += [f"profile: {100 * n / max(total, 1):5.1f}%  {name}" for name, n in leaf.most_common(top // 2)]
    return lines


def summarize(name: str, samples: Samples, late: tuple[int, int]) -> dict[str, float]:
    early_ms, late_ms, all_ms = samples.window(1, 10), samples.window(*late), samples.all()
    row = {"p50_early": pct(early_ms, 50), "p95_early": pct(early_ms, 95), "max_early": max(early_ms),
           "p50_late": pct(late_ms, 50), "p95_late": pct(late_ms, 95), "max_late": max(late_ms),
           "p50_all": pct(all_ms, 50), "p95_all": pct(all_ms, 95), "max_all": max(all_ms)}
    print(f"{name:9} turns 1–10: p50 {row['p50_early']:6.0f}  p95 {row['p95_early']:6.0f}  "
          f"max {row['max_early']:6.0f} ms   turns {late[0]}–{late[1]}: p50 {row['p50_late']:6.0f}  "
          f"p95 {row['p95_late']:6.0f}  max {row['max_late']:6.0f} ms   all: p50 {row['p50_all']:6.0f}  "
          f"p95 {row['p95_all']:6.0f}  max {row['max_all']:6.0f} ms (n={len(all_ms)})", flush=True)
    return row


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one round (one conversation per page)")
    ap.add_argument("--turns", type=int, default=50, help="turns per conversation (default 50)")
    ap.add_argument("--rounds", type=int, default=None, help="conversations per page (default 3; --quick 1)")
    ap.add_argument("--profile", type=Path, default=None, help="py-spy the app during the first round")
    ap.add_argument("--browser-profile", type=Path, default=None,
                    help="Chromium's profiler on Advisor's page, turns 1–10 and the late turns of the first round")
    ap.add_argument("--app-option", action="append", default=[], metavar="NAME=VALUE",
                    help="a Streamlit option for Advisor's server only, e.g. runner.postScriptGC=true")
    ap.add_argument("--keep-logs", type=Path, default=None, help="copy the servers' output to this folder")
    args = ap.parse_args()
    rounds = args.rounds or (1 if args.quick else 3)
    turns = max(args.turns, 10)
    late = (max(1, turns - 9), turns)

    from playwright.sync_api import sync_playwright

    print(f"machine: {machine()}; load average at start {loadavg()}", flush=True)
    app_samples, base_samples = Samples(), Samples()
    browser_profile: BrowserProfile | None = None
    loads: list[float] = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="advisor-bench-browser-") as tmp, ExitStack() as stack:
        base = Path(tmp)
        (base / "home").mkdir()
        (base / "data").mkdir()
        stub_port, app_port, baseline_port = free_port(), free_port(), free_port()
        stub_url = f"http://127.0.0.1:{stub_port}"
        stub_proc = stack.enter_context(process(
            [sys.executable, "-m", "tests.stubs.provider_server", "--host", "127.0.0.1", "--port", str(stub_port)],
            clean_env(base / "home"), base / "stub.log"))
        wait_http_ok(f"{stub_url}/_control/health", stub_proc, "the provider stub")
        stub = Stub(stub_url)

        db_name, db_url = create_database("advisor_bench_browser")
        stack.callback(drop_database, db_name)
        app_env = clean_env(
            base / "home",
            ADVISOR_DATABASE_URL=db_url, ADVISOR_PROVIDERS="openai", ADVISOR_OPENAI_BASE_URL=f"{stub_url}/v1",
            ADVISOR_OPENAI_API_KEY="sk-bench-openai", ADVISOR_OPENAI_MODEL="gpt-4o-mini",
            ADVISOR_DATA_DIR=str(base / "data"), ADVISOR_GUARD="enforce", ADVISOR_LOG_LEVEL="WARNING",
            ADVISOR_CHAT_TURNS_PER_MINUTE="1000",
        )
        subprocess.run([sys.executable, "-m", "core.db", "migrate"], cwd=ROOT, env=app_env, check=True,
                       stdout=subprocess.DEVNULL)
        app_options = [f"--{name}={value}" for name, _, value in (o.partition("=") for o in args.app_option)]
        app_proc = stack.enter_context(process([*streamlit_command("streamlit_app.py", app_port), *app_options],
                                               app_env, base / "app.log"))
        baseline_proc = stack.enter_context(process(
            streamlit_command("bench/baseline_chat.py", baseline_port),
            clean_env(base / "home", BENCH_OPENAI_BASE_URL=f"{stub_url}/v1"), base / "baseline.log"))
        app_url, baseline_url = f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{baseline_port}"
        wait_http_ok(f"{app_url}/_stcore/health", app_proc, "Advisor")
        wait_http_ok(f"{baseline_url}/_stcore/health", baseline_proc, "the baseline page")

        pw = stack.enter_context(sync_playwright())
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        stack.callback(browser.close)
        for r in range(rounds):
            app, baseline = ChatPage(browser, app_url, "advisor"), ChatPage(browser, baseline_url, "baseline")
            sign_up(app.page, app_url, f"bench-{r}-{uuid.uuid4().hex[:8]}@example.com")
            app.settle()
            baseline.open()
            # warm-up turn on each page (first imports, first connections), not counted
            app.turn(stub, "Warm-up: hello?")
            baseline.turn(stub, "Warm-up: hello?")
            profiling = stack.enter_context(ExitStack())
            if args.profile is not None and r == 0:
                args.profile.mkdir(parents=True, exist_ok=True)
                profiling.enter_context(py_spy(app_proc.pid, args.profile / "advisor.raw"))
            if args.browser_profile is not None and r == 0:
                browser_profile = BrowserProfile(app.page, args.browser_profile)
            for t in range(1, turns + 1):
                text = f"Turn {t}: what should the team do next about the roadmap?"
                order = [(app, app_samples), (baseline, base_samples)]
                window = "early" if t <= 10 else "late" if t >= late[0] else None
                for page, samples in (order if t % 2 else order[::-1]):
                    sampling: AbstractContextManager[None] = nullcontext()
                    if browser_profile is not None and r == 0 and page is app and window is not None:
                        sampling = browser_profile.turn(window, t)
                    with sampling:
                        samples.add(t, page.turn(stub, text))
                if t % 10 == 0:
                    loads.append(os.getloadavg()[0])
                    print(f"round {r + 1}/{rounds}, turn {t}/{turns}: load average {loadavg()}", flush=True)
            profiling.close()
            app.close()
            baseline.close()
        if args.keep_logs is not None:
            args.keep_logs.mkdir(parents=True, exist_ok=True)
            for log in ("app.log", "baseline.log", "stub.log"):
                shutil.copy(base / log, args.keep_logs / log)

    print(f"\nEnter → first answer characters visible (ms), {rounds} round(s) x {turns} turns, interleaved")
    app_row = summarize("advisor", app_samples, late)
    base_row = summarize("baseline", base_samples, late)
    if args.profile is not None and (args.profile / "advisor.raw").exists():
        print("\n" + "\n".join(profile_summary(args.profile / "advisor.raw")))
    if browser_profile is not None:
        print("\n" + "\n".join(browser_profile.summary()))
    print()
    print(f"figure advisor_p50_turns_1_10: {app_row['p50_early']:.0f} ms")
    print(f"figure advisor_p50_turns_{late[0]}_{late[1]}: {app_row['p50_late']:.0f} ms")
    print(f"figure baseline_p50_turns_1_10: {base_row['p50_early']:.0f} ms")
    print(f"figure baseline_p50_turns_{late[0]}_{late[1]}: {base_row['p50_late']:.0f} ms")
    print(f"figure advisor_max: {app_row['max_all']:.0f} ms")
    print(f"figure baseline_max: {base_row['max_all']:.0f} ms")
    print(f"figure loadavg_1min_during: {sum(loads) / len(loads):.2f} load (mean of {len(loads)} readings, "
          f"max {max(loads):.2f})")
    print(f"ratio p50_turns_1_10: {app_row['p50_early'] / base_row['p50_early']:.2f}x")
    print(f"ratio p50_turns_{late[0]}_{late[1]}: {app_row['p50_late'] / base_row['p50_late']:.2f}x")
    goal("p50_vs_baseline", app_row["p50_all"] / base_row["p50_all"], "x", "<=", 1.1)
    goal("p95_vs_baseline", app_row["p95_all"] / base_row["p95_all"], "x", "<=", 1.5)
    goal("late_p50_vs_early", app_row["p50_late"] / app_row["p50_early"], "x", "<=", 1.2)
    print(f"load average at end {loadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
