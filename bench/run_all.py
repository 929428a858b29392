"""Run every benchmark as a subprocess and print one table of their goals (``make bench``).

    python -m bench.run_all [--quick] [--only a,b] [--skip a,b] [--write-results] [--timeout S]

Each benchmark is ``python -m bench.<name> [--quick] [args]``; a missing file is skipped with a note.
From each one's stdout this collects (the convention is in bench/README.md):

    goal <name>: <value> <unit> (target <op> <value> [<unit>]) met|missed
    ratio <name>: <x>[x] [...]        baseline ratio; shown on the goal row of the same name, else
                                      its own row (a benchmark with one goal and one unnamed ratio:
                                      that goal's row)
    figure <name>: <value> <unit>     a reported figure without a target

``--write-results`` replaces the block between the ``run_all`` markers in bench/RESULTS.md (the rest
of the file, e.g. notes on full runs, is kept) with the date, machine, mode and the table.
Each benchmark's full stdout/stderr is kept in ``$ADVISOR_BENCH_LOG_DIR`` (default
``/tmp/advisor-bench-logs/<label>.log``). Exit status: 1 if a benchmark crashed or printed no
goal line, else 0 (a missed goal is a result).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
# (label, module, extra args), in the order they run; bench/*.py not listed here run after them
PLAN: list[tuple[str, str, list[str]]] = [
    ("assembly", "assembly", []),
    # with LiteLLM's Router timed in the same run when its virtualenv is there (make peer-venv)
    ("turn_overhead", "turn_overhead",
     ["--peer", str(PEER_PYTHON)] if (PEER_PYTHON := ROOT / ".peer-venv" / "bin" / "python").exists() else []),
    ("analytics", "analytics", []),
    ("export", "export", []),
    ("search", "search", []),
    ("load", "load", []),
    ("load --replicas 2", "load", ["--replicas", "2"]),
    ("browser_chat", "browser_chat", []),
]
NOT_BENCHMARKS = {"__init__", "common", "run_all", "seed_runs", "peer_litellm", "baseline_chat"}
BEGIN, END = "<!-- run_all:begin -->", "<!-- run_all:end -->"
LOG_DIR = Path(os.environ.get("ADVISOR_BENCH_LOG_DIR", "/tmp/advisor-bench-logs"))

GOAL_RE = re.compile(
    r"^goal (?P<name>[\w.\-/]+): (?P<value>\S+) (?P<unit>\S+) \(target (?P<op><=|>=|<|>|==) (?P<target>\S+)"
    r"(?: (?P<tunit>[^)]*))?\) (?P<result>met|missed)\s*$"
)
RATIO_RE = re.compile(r"^ratio (?P<name>[^:]+): (?P<value>[0-9.]+(?:e[-+]?\d+)?)x?\b")
FIGURE_RE = re.compile(r"^figure (?P<name>[\w.\-/]+): (?P<value>\S+)(?: (?P<unit>.*))?$")


@dataclass
class Row:
    bench: str
    figure: str
    value: str
    ratio: str = ""
    target: str = ""
    result: str = ""


@dataclass
class Outcome:
    label: str
    rows: list[Row] = field(default_factory=list)
    seconds: float = 0.0
    loadavg: str = ""
    note: str = ""
    failed: bool = False


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _fmt(value: str) -> str:
    try:
        v = float(value)
    except ValueError:
        return value
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"


def parse(label: str, stdout: str) -> list[Row]:
    goals: list[Row] = []
    ratios: list[tuple[str, str]] = []
    figures: list[Row] = []
    for line in stdout.splitlines():
        line = line.strip()
        if m := GOAL_RE.match(line):
            unit = m["unit"]
            goals.append(Row(label, m["name"], f"{_fmt(m['value'])} {unit}",
                             target=f"{m['op']} {m['target']} {m['tunit'] or unit}".strip(), result=m["result"]))
        elif m := RATIO_RE.match(line):
            ratios.append((m["name"].strip(), f"{float(m['value']):.2f}x"))
        elif m := FIGURE_RE.match(line):
            figures.append(Row(label, m["name"], f"{_fmt(m['value'])} {m['unit'] or ''}".strip(), target="—",
                               result="reported"))
    by_name = {g.figure: g for g in goals}
    unmatched = []
    for name, value in ratios:
        if name in by_name:
            by_name[name].ratio = value
        else:
            unmatched.append((name, value))
    if len(goals) == 1 and len(unmatched) == 1 and not goals[0].ratio:
        goals[0].ratio = unmatched.pop()[1]
    extra = [Row(label, f"ratio {name}", value, ratio=value, target="—", result="reported")
             for name, value in unmatched]
    return goals + extra + figures


def run_one(label: str, module: str, args: list[str], quick: bool, timeout: float) -> Outcome:
    out = Outcome(label, loadavg=loadavg())
    if not (BENCH_DIR / f"{module}.py").exists():
        out.note = f"skipped: bench/{module}.py does not exist yet"
        return out
    cmd = [sys.executable, "-m", f"bench.{module}", *args, *(["--quick"] if quick else [])]
    print(f"== {label}: {' '.join(cmd[1:])} (load average {out.loadavg})", flush=True)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        out.seconds = time.perf_counter() - t0
        out.note, out.failed = f"timed out after {timeout:.0f} s", True
        return out
    out.seconds = time.perf_counter() - t0
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = LOG_DIR / f"{label.replace(' ', '_').replace('--', '')}.log"
    log.write_text(f"$ {' '.join(cmd)}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    for line in proc.stdout.splitlines():
        if line.startswith(("goal ", "ratio ", "figure ")):
            print(f"   {line}")
    out.rows = parse(label, proc.stdout)
    if proc.returncode != 0 or not any(r.result in ("met", "missed") for r in out.rows):
        out.failed = True
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        out.note = (f"exit {proc.returncode}, no goal line" if proc.returncode == 0
                    else f"exit {proc.returncode}: {tail[0][:160]}")
        print(f"   FAILED ({out.note})\n" + "\n".join("   | " + ln for ln in (proc.stderr or "").splitlines()[-15:]))
    return out


def table(outcomes: list[Outcome]) -> str:
    head = ["benchmark", "figure", "value", "baseline ratio", "target", "result"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for o in outcomes:
        if o.note and not o.rows:
            lines.append(f"| {o.label} | — | — | — | — | {o.note} |")
            continue
        for r in o.rows:
            lines.append(f"| {r.bench} | {r.figure} | {r.value} | {r.ratio or '—'} | {r.target} | {r.result} |")
        if o.note:
            lines.append(f"| {o.label} | — | — | — | — | {o.note} |")
    return "\n".join(lines)


def timings(outcomes: list[Outcome]) -> str:
    return "\n".join(
        f"- {o.label}: {o.seconds:.0f} s, load average (1/5/15 min) at start {o.loadavg}"
        for o in outcomes if o.seconds
    )


def write_results(text: str) -> Path:
    path = BENCH_DIR / "RESULTS.md"
    block = f"{BEGIN}\n{text}\n{END}"
    if path.exists():
        current = path.read_text()
        if BEGIN in current and END in current:
            pre, rest = current.split(BEGIN, 1)
            post = rest.split(END, 1)[1]
            path.write_text(pre + block + post)
            return path
        path.write_text(current.rstrip() + "\n\n" + block + "\n")
        return path
    path.write_text("# Benchmark results\n\n" + block + "\n")
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="pass --quick to every benchmark")
    ap.add_argument("--only", default="", help="comma-separated labels or module names")
    ap.add_argument("--skip", default="", help="comma-separated labels or module names")
    ap.add_argument("--write-results", action="store_true", help="update bench/RESULTS.md")
    ap.add_argument("--timeout", type=float, default=3600, help="per benchmark, seconds")
    args = ap.parse_args()
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    skip = {x.strip() for x in args.skip.split(",") if x.strip()}

    plan = list(PLAN)
    known = {m for _, m, _ in plan}
    for path in sorted(BENCH_DIR.glob("*.py")):
        if path.stem not in known and path.stem not in NOT_BENCHMARKS:
            plan.append((path.stem, path.stem, []))

    outcomes: list[Outcome] = []
    started = datetime.now(UTC)
    for label, module, extra in plan:
        if (only and label not in only and module not in only) or label in skip or module in skip:
            continue
        outcomes.append(run_one(label, module, extra, args.quick, args.timeout))

    mode = "--quick" if args.quick else "full"
    report = (
        f"Run by `python -m bench.run_all{' --quick' if args.quick else ''}` on {started:%Y-%m-%d %H:%M} UTC "
        f"({mode}); machine: {machine()}.\n\n{table(outcomes)}\n\n{timings(outcomes)}"
    )
    print("\n" + report)
    print(f"\nfull output of each benchmark: {LOG_DIR}/")
    if args.write_results:
        print(f"\nwrote {write_results(report).relative_to(ROOT)}")
    return 1 if any(o.failed for o in outcomes) else 0


if __name__ == "__main__":
    raise SystemExit(main())
