"""Helpers shared by the benchmarks: throwaway PostgreSQL databases, percentiles, goal lines."""

from __future__ import annotations

import os
import platform
import statistics
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

PG_ADMIN_DSN = os.environ.get("ADVISOR_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def create_database(prefix: str = "advisor_bench") -> tuple[str, str]:
    """Create an empty database; return (name, SQLAlchemy URL)."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return name, f"{base}/{name}"


def drop_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


def pct(values: Sequence[float], q: float) -> float:
    """Percentile with linear interpolation (numpy's default)."""
    data = sorted(values)
    if not data:
        return float("nan")
    k = (len(data) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def goal(name: str, value: float, unit: str, op: str, target: float) -> str:
    ok = {"<=": value <= target, "<": value < target, ">=": value >= target, ">": value > target}[op]
    line = f"goal {name}: {value:.3f} {unit} (target {op} {target:g} {unit}) {'met' if ok else 'missed'}"
    print(line, flush=True)
    return line


def machine() -> str:
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.machine()}, {os.cpu_count()} cores, {mem_gb:.0f} GiB RAM, Python {platform.python_version()}"

# What the usage trigger would have added for the seeded users' runs (same sums as migration 0005).
_COUNT_SEEDED_USAGE = """
INSERT INTO usage_counters AS u (user_id, day, tokens, cost_usd)
SELECT user_id, (created_at AT TIME ZONE 'UTC')::date,
       sum(coalesce(input_tokens, 0) + coalesce(cached_input_tokens, 0) + coalesce(cache_write_tokens, 0)
           + coalesce(output_tokens, 0)),
       sum(coalesce(cost_usd, 0))
FROM agent_runs WHERE user_id = ANY(%s) GROUP BY 1, 2
ON CONFLICT (user_id, day) DO UPDATE SET tokens = u.tokens + EXCLUDED.tokens, cost_usd = u.cost_usd + EXCLUDED.cost_usd
"""


@contextmanager
def usage_trigger_paused(cur: Any, user_ids: Sequence[uuid.UUID]) -> Iterator[None]:
    """PostgreSQL, as the tables' owner, inside the seeding transaction: the usage trigger
    (migration 0005) would run once per copied row; it is off while ``user_ids``' runs are copied,
    and their counters are summed once afterwards (the same sums as the trigger's)."""
    cur.execute("ALTER TABLE agent_runs DISABLE TRIGGER agent_runs_count_usage_insert")
    yield
    cur.execute("ALTER TABLE agent_runs ENABLE TRIGGER agent_runs_count_usage_insert")
    cur.execute(_COUNT_SEEDED_USAGE, (list(user_ids),))
