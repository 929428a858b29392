"""Seed realistic agent runs: ``python -m bench.seed_runs --users 1000 --runs 1000000 --database-url URL``.

Deterministic for a given ``--seed``. Users (the first one an administrator), then their
conversations, then runs: provider/model mix, ~3 % errors, ~1 % interrupted, ~5 % fallbacks,
log-normal latencies and time to first token, log-normal token counts, cost from per-model prices,
``created_at`` spread over the last ``--days`` days with a weekday/office-hours rhythm, per-user
activity skewed (log-normal weights), short realistic message and answer texts; ~12 % of the
answers rated (three in four thumbs up, some with a comment), ~6 % of the runs superseded.

PostgreSQL: ``COPY … FROM STDIN`` (psycopg 3 ``cursor.copy``), in chunks, with a progress line on
stderr. COPY into a table under row-level security needs a role that bypasses it (a superuser or
BYPASSRLS, e.g. the ``postgres`` role used by the tests and benchmarks). SQLite: ``executemany``.
The target database must already be migrated (``seed_runs`` migrates it first when asked).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np

from bench.common import usage_trigger_paused

# provider, model, share of runs, USD per 1M input tokens, per 1M output tokens, latency factor
MODELS: tuple[tuple[str, str, float, str, str, float], ...] = (
    ("openai", "gpt-4o-mini", 0.34, "0.15", "0.60", 0.7),
    ("openai", "gpt-4.1", 0.16, "2.00", "8.00", 1.1),
    ("anthropic", "claude-sonnet-4-5", 0.26, "3.00", "15.00", 1.2),
    ("anthropic", "claude-haiku-4-5", 0.14, "1.00", "5.00", 0.6),
    ("demo", "demo", 0.10, "0", "0", 0.2),
)
ERROR_SHARE = 0.03
INTERRUPTED_SHARE = 0.01
FALLBACK_SHARE = 0.05
RATED_SHARE = 0.12  # of the answers: rated by their user, three in four of them thumbs up
SUPERSEDED_SHARE = 0.06  # runs replaced by an edit or a regeneration (by a run that is not seeded)
COMMENTS = ("Too long", "Exactly what I needed", "Missed the point about hiring", "Good numbers")
ERROR_CODES = ("rate_limited", "server", "timeout", "connection", "auth", "bad_request")
# why an answer was cut off: its stream (timeout), the process died or was stopped, the user stopped
INTERRUPTION_CODES = ("timeout", "process_stopped", "shutdown", "cancelled", "timeout")
AGENTS = ("general", "architecture-review", "hiring-plan", "incident-postmortem", "board-update", "pricing")
TOPICS = (
    "Q3 hiring plan", "Postgres migration", "On-call rotation", "Board deck", "Pricing tiers",
    "Incident review: checkout outage", "Monolith split", "Platform team charter", "SOC 2 prep",
    "Cloud cost review", "Mobile release train", "Data warehouse choice", "Team topology",
)  # fmt: skip
QUESTIONS = (
    "How should we structure on-call for twelve engineers across two time zones?",
    "We have 18 months of runway. Which two platform investments pay back first?",
    "Draft the engineering section of next week's board update; velocity dipped 15%.",
    "Is it time to split the billing service out of the monolith? Traffic doubled this quarter.",
    "What should a staff engineer own in a 40-person org without a platform team?",
    "Our p95 checkout latency went from 400 ms to 1.2 s after the ORM upgrade. Where do we start?",
    "Compare usage-based and seat-based pricing for a developer tool with a free tier.",
    "Write a blameless post-mortem outline for yesterday's 47-minute outage.",
    "How many SREs do we need for 99.95% on three regions?",
    "Which metrics tell me the new hiring loop is working after two months?",
)
PARAGRAPHS = (
    "Start with the constraint that actually binds: people, not tools. Map who is paged today, how "
    "often, and for what, then cut the noisy alerts before you redesign the rotation.",
    "A reasonable default is a weekly primary/secondary pair per region with a follow-the-sun "
    "hand-off, a documented escalation path, and compensation that is written down.",
    "Measure it before and after: lead time, change failure rate, and time to restore. If two of "
    "the three move the right way within a quarter, keep going; otherwise revisit the scope.",
    "The cheapest win is usually an index or a query that stopped using one. Capture the slow "
    "statements with their plans first, then decide whether the ORM change is the cause.",
    "For the board, lead with outcomes (revenue unlocked, risk retired), then the two or three "
    "bets for next quarter with their cost and the signal that tells you they are working.",
    "Split a service when its change cadence or scaling profile diverges from the monolith, not "
    "because of size. Extract the data ownership first; the network hop is the easy part.",
    "Price on the unit your customers already budget for. Seats are predictable; usage aligns with "
    "value but needs guard rails such as caps, alerts and a committed-use discount.",
    "Write it in the order readers need it: impact, timeline, contributing factors, what went "
    "well, and owned follow-ups with dates. Keep names out of the causes.",
)


@dataclass(frozen=True)
class SeedResult:
    user_ids: list[uuid.UUID]
    admin_id: uuid.UUID
    runs_per_user: list[int]
    conversations: int
    runs: int
    start: datetime
    end: datetime
    seconds: float


class _Progress:
    def __init__(self, label: str, total: int, enabled: bool) -> None:
        self.label, self.total, self.enabled = label, total, enabled
        self.started = time.perf_counter()
        self.last = 0.0

    def update(self, done: int) -> None:
        now = time.perf_counter()
        if not self.enabled or (now - self.last < 0.5 and done < self.total):
            return
        self.last = now
        rate = done / max(now - self.started, 1e-9)
        pct = 100.0 * done / max(self.total, 1)
        end = "\n" if done >= self.total else ""
        if done >= self.total:
            self.enabled = False  # print the final line once
        print(
            f"\r{self.label}: {done:,}/{self.total:,} ({pct:5.1f}%, {rate:,.0f}/s)",
            end=end,
            file=sys.stderr,
            flush=True,
        )


def _uuids(rnd: random.Random, n: int) -> list[uuid.UUID]:
    return [uuid.UUID(int=rnd.getrandbits(128), version=4) for _ in range(n)]


def _weekday_hours_times(rng: np.random.Generator, n: int, start: datetime, days: int) -> np.ndarray:
    """Seconds after ``start``: more on weekdays and office hours (UTC), never outside the range."""
    day = rng.integers(0, days, size=n)
    weekday = (start.weekday() + day) % 7
    keep_weekend = rng.random(n) < 0.35
    day = np.where((weekday >= 5) & ~keep_weekend, (day + 2) % days, day)
    hour = np.clip(rng.normal(14.0, 3.5, size=n), 0, 23.999)
    seconds = day * 86_400 + (hour * 3600).astype(np.int64)
    return np.asarray(seconds + rng.integers(0, 1_000_000, size=n) / 1e6)


def _run_chunks(
    *,
    rng: np.random.Generator,
    rnd: random.Random,
    judged: np.random.Generator,
    run_owner: np.ndarray,
    conversations: list[list[uuid.UUID]],
    start: datetime,
    days: int,
    chunk: int,
    content: bool,
) -> Iterator[list[tuple[Any, ...]]]:
    shares = np.array([m[2] for m in MODELS])
    shares = shares / shares.sum()
    prices = [(Decimal(m[3]), Decimal(m[4])) for m in MODELS]
    mega = Decimal(1_000_000)
    eight = Decimal("0.00000001")
    prompts = [f"{rnd.getrandbits(256):064x}" for _ in range(24)]
    atom_sets = [json.dumps([["persona", 1 + i % 3], ["tone", 2], ["agent", 1 + i % 5]]) for i in range(24)]
    total = len(run_owner)
    for lo in range(0, total, chunk):
        owners = run_owner[lo : lo + chunk]
        n = len(owners)
        model_ix = rng.choice(len(MODELS), size=n, p=shares)
        u = rng.random(n)
        status = np.where(u < ERROR_SHARE, 2, np.where(u < ERROR_SHARE + INTERRUPTED_SHARE, 3, 1))
        fallback = rng.random(n) < FALLBACK_SHARE
        factor = np.array([MODELS[i][5] for i in model_ix])
        ttft = np.maximum(40, rng.lognormal(np.log(650), 0.55, n) * factor).astype(np.int64)
        gen = rng.lognormal(np.log(5200), 0.6, n) * factor
        latency = (ttft + gen).astype(np.int64)
        latency = np.where(fallback, latency + rng.lognormal(np.log(900), 0.5, n).astype(np.int64), latency)
        err_latency = rng.lognormal(np.log(1500), 0.9, n).astype(np.int64) + 20
        tin = rng.lognormal(np.log(1800), 0.6, n).astype(np.int64) + 50
        tout = rng.lognormal(np.log(480), 0.7, n).astype(np.int64) + 5
        cached = (tin * rng.uniform(0, 0.6, n)).astype(np.int64)
        seconds = _weekday_hours_times(rng, n, start, days)
        q_ix = rng.integers(0, len(QUESTIONS), n)
        p_ix = rng.integers(0, len(PARAGRAPHS), (n, 4))
        n_par = rng.integers(1, 5, n)
        prompt_ix = rng.integers(0, len(prompts), n)
        agent_ix = rng.integers(0, len(AGENTS), n)
        err_ix = rng.integers(0, len(ERROR_CODES), n)
        conv_pick = rng.random(n)
        # feedback and versions from a generator of their own: the other columns stay as they were seeded
        rated = judged.random(n) < RATED_SHARE
        thumbs = np.where(judged.random(n) < 0.75, 1, -1)
        superseded = judged.random(n) < SUPERSEDED_SHARE
        comment_ix = judged.integers(0, len(COMMENTS) * 3, n)  # one rating in three has a comment
        rows: list[tuple[Any, ...]] = []
        cut = 0
        for k in range(n):
            owner = int(owners[k])
            convs = conversations[owner]
            provider, model = MODELS[model_ix[k]][0], MODELS[model_ix[k]][1]
            fb = None
            if fallback[k] and provider != "demo":
                other = [m for m in MODELS if m[0] not in (provider, "demo")]
                fb = other[k % len(other)][1]
            st = int(status[k])
            created = start + timedelta(seconds=float(seconds[k]))
            question = QUESTIONS[q_ix[k]] if content else "q"
            if st == 2:  # error before any token
                row_status, itok, otok, ctok, cost, t_first, lat = (
                    "error",
                    None,
                    None,
                    None,
                    None,
                    None,
                    int(err_latency[k]),
                )
                output, code = "", ERROR_CODES[err_ix[k]]
            else:
                itok, otok, ctok = int(tin[k]), int(tout[k]), int(cached[k])
                t_first, lat, code = int(ttft[k]), int(latency[k]), None
                row_status = "ok"
                if st == 3:
                    row_status, otok, lat = "interrupted", max(1, otok // 3), max(t_first + 1, lat // 3)
                    code = INTERRUPTION_CODES[cut % len(INTERRUPTION_CODES)]
                pin, pout = prices[model_ix[k]]
                cost = ((pin * itok + pout * otok) / mega).quantize(eight)
                if st == 3:
                    cut += 1
                if st == 3 and cut % 3 == 1:  # the 1st, 4th, 7th ... interrupted run
                    # cut before the final usage report: input counted, output and cost unknown
                    otok, cost = None, None
                pars = int(n_par[k]) if st == 1 else 1
                output = "\n\n".join(PARAGRAPHS[j] for j in p_ix[k][:pars]) if content else "a"
            # cache writes: Anthropic's prompt cache reports them; the others write none
            cwtok = None if ctok is None else (ctok // 7 if provider == "anthropic" else 0)
            run_id = uuid.UUID(int=rnd.getrandbits(128), version=4)
            rating = int(thumbs[k]) if rated[k] and row_status == "ok" else None
            comment = COMMENTS[comment_ix[k]] if rating is not None and comment_ix[k] < len(COMMENTS) else None
            rated_at = None if rating is None else created + timedelta(minutes=2)
            replaced_by = uuid.uuid5(run_id, "next version") if superseded[k] else None
            rows.append((
                run_id, owner, convs[int(conv_pick[k] * len(convs))],
                AGENTS[agent_ix[k]], created, question, output, row_status, provider, model, fb,
                itok, otok, ctok, cwtok, cost, t_first, lat,
                prompts[prompt_ix[k]], atom_sets[prompt_ix[k]], f"{rnd.getrandbits(48):012x}", code,
                replaced_by, rating, comment, rated_at,
            ))  # fmt: skip
        yield rows


RUN_COLUMNS = (
    "id", "user_id", "conversation_id", "agent", "created_at", "user_message", "output", "status",
    "provider", "model", "fallback_from", "input_tokens", "output_tokens", "cached_input_tokens",
    "cache_write_tokens", "cost_usd", "ttft_ms", "latency_ms", "prompt_sha256", "atom_versions",
    "request_id", "error_code", "superseded_by", "feedback", "feedback_comment", "feedback_at",
)  # fmt: skip


def seed_runs(
    *,
    database_url: str,
    users: int,
    runs: int,
    seed: int = 0,
    days: int = 90,
    end: datetime | None = None,
    admin: bool = True,
    content: bool = True,
    migrate: bool = False,
    progress: bool = True,
    chunk: int = 50_000,
) -> SeedResult:
    """Insert ``users`` users, their conversations and ``runs`` runs; returns what was created.

    Runs fall in ``[end - days, end)`` (``end`` defaults to the start of tomorrow, UTC).
    """
    from sqlalchemy import insert

    from core import db as core_db
    from models import AgentRun, Conversation, User

    if users < 1 or runs < 0 or days < 1:
        raise ValueError("need users >= 1, runs >= 0, days >= 1")
    started = time.perf_counter()
    if migrate:
        core_db.migrate(database_url)
    rng = np.random.default_rng(seed)
    rnd = random.Random(seed)
    if end is None:
        today = datetime.now(UTC)
        end = datetime(today.year, today.month, today.day, tzinfo=UTC) + timedelta(days=1)
    start = end - timedelta(days=days)

    user_ids = _uuids(rnd, users)
    weights = rng.lognormal(0.0, 0.8, users)
    run_owner = rng.choice(users, size=runs, p=weights / weights.sum()) if runs else np.zeros(0, np.int64)
    per_user = np.bincount(run_owner, minlength=users)
    conversations: list[list[uuid.UUID]] = [_uuids(rnd, max(1, int(c) // 12)) for c in per_user]
    created_user = start - timedelta(days=1)
    user_rows = [
        (uid, f"seed{seed}-user{i:05d}@example.com", None, "local", None, admin and i == 0, created_user)
        for i, uid in enumerate(user_ids)
    ]
    conv_rows = [
        (cid, user_ids[i], f"{TOPICS[(i + j) % len(TOPICS)]} #{j + 1}", AGENTS[j % len(AGENTS)], created_user)
        for i, convs in enumerate(conversations)
        for j, cid in enumerate(convs)
    ]
    chunks = _run_chunks(
        rng=rng,
        rnd=rnd,
        judged=np.random.default_rng([seed, 19]),
        run_owner=run_owner,
        conversations=conversations,
        start=start,
        days=days,
        chunk=chunk,
        content=content,
    )
    bar = _Progress("seeding runs", runs, progress)
    engine = core_db.engine_for(database_url)
    user_cols = ("id", "email", "password_hash", "auth_provider", "oidc_subject", "is_admin", "created_at")
    conv_cols = ("id", "user_id", "title", "agent", "created_at")
    done = 0
    if engine.dialect.name == "postgresql":
        from psycopg.types.json import Jsonb

        raw = engine.raw_connection()
        try:
            conn: Any = raw.driver_connection
            with conn.cursor() as cur:
                with cur.copy(f"COPY users ({', '.join(user_cols)}) FROM STDIN") as cp:
                    for user_row in user_rows:
                        cp.write_row(user_row)
                with cur.copy(f"COPY conversations ({', '.join(conv_cols)}) FROM STDIN") as cp:
                    for conv_row in conv_rows:
                        cp.write_row(conv_row)
                with usage_trigger_paused(cur, user_ids):
                    for rows in chunks:
                        with cur.copy(f"COPY agent_runs ({', '.join(RUN_COLUMNS)}) FROM STDIN") as cp:
                            for r in rows:
                                cp.write_row(
                                    (*r[:1], user_ids[r[1]], *r[2:19], Jsonb(json.loads(r[19])), *r[20:])
                                )
                        done += len(rows)
                        bar.update(done)
            conn.commit()
        finally:
            raw.close()
    else:
        users_t, conv_t, runs_t = User.__table__, Conversation.__table__, AgentRun.__table__  # type: ignore[attr-defined]
        with engine.begin() as c:
            c.execute(insert(users_t), [dict(zip(user_cols, r, strict=True)) for r in user_rows])
            for lo in range(0, len(conv_rows), 5000):
                c.execute(
                    insert(conv_t), [dict(zip(conv_cols, r, strict=True)) for r in conv_rows[lo : lo + 5000]]
                )
            for rows in chunks:
                batch = []
                for r in rows:
                    d = dict(zip(RUN_COLUMNS, r, strict=True))
                    d["user_id"] = user_ids[r[1]]
                    d["atom_versions"] = json.loads(r[19])
                    batch.append(d)
                c.execute(insert(runs_t), batch)
                done += len(rows)
                bar.update(done)
    bar.update(runs)
    return SeedResult(
        user_ids=user_ids,
        admin_id=user_ids[0],
        runs_per_user=[int(c) for c in per_user],
        conversations=len(conv_rows),
        runs=runs,
        start=start,
        end=end,
        seconds=time.perf_counter() - started,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--database-url", default=None, help="default: ADVISOR_DATABASE_URL / settings")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--migrate", action="store_true", help="run the migrations first")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.add_argument("--demo-password", default=None,
                        help="let the first (admin) seeded user sign in with this password")
    args = parser.parse_args(argv)
    url = args.database_url
    if url is None:
        from core.settings import get_settings

        url = get_settings().database_url
    result = seed_runs(
        database_url=url,
        users=args.users,
        runs=args.runs,
        seed=args.seed,
        days=args.days,
        migrate=args.migrate,
        progress=not args.quiet,
    )
    if args.demo_password:
        from sqlalchemy import update

        from core import db as core_db
        from core.passwords import hash_password
        from models import User

        with core_db.system_session(engine=core_db.engine_for(url)) as s:
            s.execute(update(User).where(User.id == result.admin_id)  # type: ignore[arg-type]
                      .values(password_hash=hash_password(args.demo_password)))
    print(
        f"seeded {len(result.user_ids)} users (admin: seed{args.seed}-user00000@example.com), "
        f"{result.conversations} conversations, {result.runs} runs in {result.seconds:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
