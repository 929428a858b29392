"""GDPR export of a heavy user on PostgreSQL: wall time, CPU time and peak RSS of ``iter_export_zip``, against
``COPY (SELECT * FROM agent_runs WHERE user_id = …) TO STDOUT`` of the same rows, in the same run.

    python -m bench.export [--quick] [--runs N] [--repeat N]

Creates its own database (dropped at the end), seeds one user with N runs (100,000; ``--quick``:
10,000) of about 2 KB of text each through COPY, then measures each side in a fresh subprocess (so
the memory of seeding does not count): the export streams the ZIP into a byte counter, COPY streams
the rows into a byte counter. A third side is the floor of the export's design: ``json``, ``csv``
and ``zlib`` alone on the same rows, read beforehand (what the export costs at the least with those
libraries on this machine). The median of ``--repeat`` runs of each is reported.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench.common import create_database, drop_database, goal, machine, usage_trigger_paused

ROOT = Path(__file__).resolve().parent.parent
RUN_TEXT_BYTES = 2048
WORDS = (  # noqa: SIM905
    "latency budget rollout migration hiring roadmap incident postmortem pricing churn revenue "
    "architecture kubernetes postgres cache queue retry idempotent service contract team onboarding "
    "velocity quarter board update margin customer segment experiment metric dashboard alert on-call "
    "runbook dependency upgrade security review compliance audit vendor contract cost cloud spend "
    "staff engineer manager principal platform product design feedback retention growth funnel"
).split()


def _text(rng: random.Random, size: int) -> str:
    words: list[str] = []
    n = 0
    while n < size:
        w = rng.choice(WORDS)
        words.append(w)
        n += len(w) + 1
    return " ".join(words)[:size]


def seed(admin_dsn: str, user_id: uuid.UUID, runs: int) -> None:
    """One user, one conversation, ``runs`` agent runs of ~2 KB text each (COPY ... FROM STDIN)."""
    rng = random.Random(42)
    pool = [(_text(rng, 400), _text(rng, RUN_TEXT_BYTES - 400)) for _ in range(500)]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    conv_id = uuid.uuid4()
    with psycopg.connect(admin_dsn) as conn:
        conn.execute(
            "INSERT INTO users (id, email, auth_provider, is_admin, created_at) "
            "VALUES (%s, %s, 'local', false, %s)",
            (user_id, f"bench-{user_id.hex[:8]}@example.com", start),
        )
        conn.execute(
            "INSERT INTO conversations (id, user_id, title, agent, created_at) "
            "VALUES (%s, %s, 'bench', 'general', %s)",
            (conv_id, user_id, start),
        )
        cols = (
            "id, user_id, conversation_id, agent, created_at, user_message, output, status, provider, "
            "model, input_tokens, output_tokens, cost_usd, ttft_ms, latency_ms, prompt_sha256, "
            "atom_versions, request_id"
        )
        cur = conn.cursor()
        copy_sql = f"COPY agent_runs ({cols}) FROM STDIN"
        with usage_trigger_paused(cur, [user_id]), cur.copy(copy_sql) as copy:  # type: ignore[arg-type]
            for i in range(runs):
                question, answer = pool[i % len(pool)]
                copy.write_row(
                    (
                        uuid.uuid4(), user_id, conv_id, "general", start + timedelta(seconds=i),
                        f"{i} {question}", answer, "ok", "demo", "demo-1",
                        120 + i % 50, 400 + i % 300, "0.00012300", 300 + i % 100, 2000 + i % 900,
                        "ab" * 32, '[["base", 1], ["tone", 2]]', uuid.uuid4().hex[:12],
                    )
                )  # fmt: skip
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE agent_runs")


# --------------------------------------------------------------------------------------------
# children (a fresh process each: their peak RSS is the export's, not the seeding's)
# --------------------------------------------------------------------------------------------
def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _cpu_s() -> float:
    """CPU seconds (user + system) of this process: what the wall time would be on an idle core."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child_export(user_id: uuid.UUID) -> dict[str, float]:
    from core import db as core_db
    from core.export import iter_export_zip

    rss_before = _peak_rss_mb()
    cpu0 = _cpu_s()
    t0 = time.perf_counter()
    size = 0
    for chunk in iter_export_zip(user_id=user_id):
        size += len(chunk)
    wall = time.perf_counter() - t0
    cpu = _cpu_s() - cpu0
    core_db.dispose_engines()
    return {"wall": wall, "cpu": cpu, "rss_mb": _peak_rss_mb(), "rss_before_mb": rss_before, "bytes": size}


def child_copy(admin_dsn: str, user_id: uuid.UUID) -> dict[str, float]:
    rss_before = _peak_rss_mb()
    t0 = time.perf_counter()
    size = 0
    with psycopg.connect(admin_dsn) as conn, conn.cursor() as cur:
        stmt = sql.SQL("COPY (SELECT * FROM agent_runs WHERE user_id = {} ORDER BY created_at, id) TO STDOUT")
        with cur.copy(stmt.format(sql.Literal(user_id))) as copy:
            for data in copy:
                size += len(data)
    wall = time.perf_counter() - t0
    return {"wall": wall, "rss_mb": _peak_rss_mb(), "rss_before_mb": rss_before, "bytes": size}


def child_floor(admin_dsn: str, user_id: uuid.UUID) -> dict[str, float]:
    """The floor of the design the export keeps (``json`` + ``csv`` + ``zlib``): the same rows, read
    beforehand (not timed) with their values already as in JSON, written as JSON lines and as CSV
    and deflated at the export's level with the CRC a ZIP needs, in batches of the export's size. No
    database, no ZIP, no hashing: what those libraries alone cost on this machine."""
    from core.export import BATCH_ROWS, COMPRESS_LEVEL

    with psycopg.connect(admin_dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'agent_runs' "
                    "AND is_generated = 'NEVER' ORDER BY ordinal_position")  # the export's columns
        names = [name for (name,) in cur.fetchall()]
        columns = sql.SQL(", ").join(map(sql.Identifier, names))
        cur.execute(sql.SQL("SELECT {} FROM agent_runs WHERE user_id = %s ORDER BY created_at, id").format(columns),
                    (user_id,))
        rows = [tuple(str(v) if isinstance(v, uuid.UUID | datetime | Decimal) else v for v in row) for row in cur]
    encoder = json.JSONEncoder(ensure_ascii=False)
    buf = io.StringIO()
    table = csv.writer(buf, lineterminator="\r\n")

    def jsonl(batch: list[tuple[Any, ...]]) -> str:
        return "\n".join(encoder.encode(dict(zip(names, r, strict=True))) for r in batch) + "\n"

    def csv_rows(batch: list[tuple[Any, ...]]) -> str:
        buf.seek(0)
        buf.truncate(0)
        table.writerows(batch)
        return buf.getvalue()

    cpu0 = _cpu_s()
    t0 = time.perf_counter()
    size = 0
    for text_of in (jsonl, csv_rows):
        deflate = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, -15)
        crc = 0
        for i in range(0, len(rows), BATCH_ROWS):
            data = text_of(rows[i : i + BATCH_ROWS]).encode("utf-8")
            crc = zlib.crc32(data, crc)
            size += len(deflate.compress(data))
        size += len(deflate.flush())
    return {"wall": time.perf_counter() - t0, "cpu": _cpu_s() - cpu0, "bytes": size}


def _run_child(kind: str, url: str, admin_dsn: str, user_id: uuid.UUID) -> dict[str, float]:
    env = {**os.environ, "ADVISOR_DATABASE_URL": url, "ADVISOR_GUARD": "off", "ADVISOR_MIGRATE_ON_START": "0"}
    args = [sys.executable, "-m", "bench.export", "--child", kind, "--dsn", admin_dsn, "--user", str(user_id)]
    out = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, check=True, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="10,000 runs instead of 100,000")
    p.add_argument("--runs", type=int, default=None)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--child", choices=["export", "copy", "floor"], help=argparse.SUPPRESS)
    p.add_argument("--dsn", help=argparse.SUPPRESS)
    p.add_argument("--user", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.child:
        user_id = uuid.UUID(args.user)
        children = {
            "export": lambda: child_export(user_id),
            "copy": lambda: child_copy(args.dsn, user_id),
            "floor": lambda: child_floor(args.dsn, user_id),
        }
        result = children[args.child]()
        print(json.dumps(result))
        return 0

    runs = args.runs or (10_000 if args.quick else 100_000)
    print(f"export benchmark: {runs:,} runs x ~{RUN_TEXT_BYTES} B text, PostgreSQL; {machine()}", flush=True)
    print("load average (1, 5, 15 min) at the start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()), flush=True)
    from core import db as core_db

    name, url = create_database("advisor_bench_export")
    admin_dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        core_db.migrate(url)
        core_db.dispose_engines()
        user_id = uuid.uuid4()
        t0 = time.perf_counter()
        seed(admin_dsn, user_id, runs)
        print(f"seeded in {time.perf_counter() - t0:.1f} s", flush=True)
        _run_child("copy", url, admin_dsn, user_id)  # warm the cache once
        exports: list[dict[str, float]] = []
        copies: list[dict[str, float]] = []
        floors: list[dict[str, float]] = []
        print("load average (1, 5, 15 min) before the timed runs: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
        for _ in range(max(1, args.repeat)):  # interleaved, so drift hits both sides
            copies.append(_run_child("copy", url, admin_dsn, user_id))
            exports.append(_run_child("export", url, admin_dsn, user_id))
            floors.append(_run_child("floor", url, admin_dsn, user_id))
    finally:
        core_db.dispose_engines()
        drop_database(name)

    export_wall = statistics.median(r["wall"] for r in exports)
    copy_wall = statistics.median(r["wall"] for r in copies)
    export_rss = max(r["rss_mb"] for r in exports)
    copy_rss = max(r["rss_mb"] for r in copies)
    print("export runs: " + ", ".join(f"{r['wall']:.2f} s (CPU {r['cpu']:.2f} s)" for r in exports))
    print(
        f"export: median {export_wall:.2f} s over {len(exports)}, ZIP {exports[0]['bytes'] / 2**20:.1f} MiB, "
        f"peak RSS {export_rss:.0f} MB (after imports {exports[0]['rss_before_mb']:.0f} MB)"
    )
    print(
        f"COPY baseline: median {copy_wall:.2f} s, {copies[0]['bytes'] / 2**20:.1f} MiB of rows, "
        f"peak RSS {copy_rss:.0f} MB"
    )
    floor_wall = statistics.median(r["wall"] for r in floors)
    floor_cpu = statistics.median(r["cpu"] for r in floors)
    print(
        f"json + csv + zlib alone on the same rows (read beforehand): median {floor_wall:.2f} s "
        f"(CPU {floor_cpu:.2f} s), {floors[0]['bytes'] / 2**20:.1f} MiB deflated"
    )
    print(f"ratio export/COPY: wall {export_wall / copy_wall:.1f}x, peak RSS {export_rss / copy_rss:.1f}x")
    print(f"ratio export/(json + csv + zlib alone): wall {export_wall / floor_wall:.2f}x")
    print("load average (1, 5, 15 min) at the end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    goal("export_wall", export_wall, "s", "<=", 10)
    goal("export_rss", export_rss, "MB", "<", 300)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
