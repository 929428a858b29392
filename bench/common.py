"""Helpers shared by the benchmarks: throwaway PostgreSQL databases, percentiles, goal lines."""

from __future__ import annotations

import os
import platform
import statistics
import uuid
from collections.abc import Sequence

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
