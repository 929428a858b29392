"""The export streams: memory stays flat as a user's runs grow, and bytes come out as rows are read."""

from __future__ import annotations

import random
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from core.privacy import CHUNK_BYTES, iter_export_zip
from tests.factories import make_user

pytestmark = pytest.mark.pg

WORDS = ["latency", "budget", "rollout", "migration", "hiring", "roadmap", "incident", "pricing", "churn"]


def seed_runs(pg_url: str, user_id: uuid.UUID, runs: int) -> None:
    """``runs`` runs of ~2 KB text each for ``user_id`` (COPY, as the table owner)."""
    rng = random.Random(runs)
    texts = [" ".join(rng.choice(WORDS) for _ in range(300))[:2000] for _ in range(50)]
    conv = uuid.uuid4()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with psycopg.connect(pg_url.replace("postgresql+psycopg://", "postgresql://", 1)) as conn:
        conn.execute("INSERT INTO conversations (id, user_id, title, agent, created_at) "
                     "VALUES (%s, %s, 'bulk', 'general', %s)", (conv, user_id, start))
        with conn.cursor().copy("COPY agent_runs (id, user_id, conversation_id, agent, created_at, "
                                "user_message, output, status, request_id) FROM STDIN") as copy:
            for i in range(runs):
                copy.write_row((uuid.uuid4(), user_id, conv, "general", start + timedelta(seconds=i),
                                f"{i} {texts[i % 50][:500]}", texts[(i + 7) % 50], "ok", f"r{i}"))


def measure(user_id: uuid.UUID) -> tuple[int, int, int, int]:
    """(peak traced bytes, total ZIP bytes, number of chunks, largest chunk) of one export."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        total = chunks = largest = 0
        for chunk in iter_export_zip(user_id=user_id):
            total += len(chunk)
            chunks += 1
            largest = max(largest, len(chunk))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, total, chunks, largest


def test_export_memory_stays_flat_as_runs_grow(pg_url):
    small, large = make_user(), make_user()
    seed_runs(pg_url, small, 2_000)
    seed_runs(pg_url, large, 20_000)
    measure(small)  # warm-up: imports, reflection caches, compiled statements

    peak_small, size_small, _, _ = measure(small)
    peak_large, size_large, chunks, largest = measure(large)

    assert size_large > 8 * size_small  # ten times the data really went through
    assert size_large > 20 * CHUNK_BYTES
    # Ten times the rows (~80 MB of JSON + CSV) may not cost ten times the memory: flat, give or take.
    assert peak_large < 2 * peak_small + 4 * 2**20, (peak_small, peak_large)
    assert peak_large < 40 * 2**20, peak_large
    # and the bytes come out while rows are read, in bounded chunks
    assert chunks > size_large // (4 * CHUNK_BYTES)
    assert largest < 4 * CHUNK_BYTES + 2**20


def test_export_closed_in_the_middle_of_the_runs_cancels_the_query(pg_url):
    user = make_user()
    seed_runs(pg_url, user, 5_000)
    chunks = iter_export_zip(user_id=user)
    read = 0
    for chunk in chunks:  # well into agent_runs.jsonl (~10 MB of lines), the query still streaming
        read += len(chunk)
        if read > 4 * CHUNK_BYTES:
            break
    chunks.close()
    admin = pg_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(admin) as conn:
        busy = conn.execute(
            "SELECT state, query FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND state <> 'idle'"
        ).fetchall()
    assert busy == []
    assert sum(len(c) for c in iter_export_zip(user_id=user)) > read  # the pool's connection works
