"""Analytics isolation: own rows only (both walls), admin figures carry no content, non-admins refused."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError
from sqlmodel import col

from core import analytics
from core.analytics import Filters
from core.analytics.dashboard import figure_rows
from core.analytics.statements import KPIS, SERIES, Part
from core.db import NotFound, system_session, user_session
from models import AgentRun
from tests.factories import fill_user, make_user

_RANGE = "CAST(:s AS timestamptz), CAST(:e AS timestamptz), NULL, NULL, NULL"
ADMIN_FUNCTIONS = {  # one function since migration 0004 (generated from core.analytics.figures since 0009)
    "analytics_admin_dashboard": f"CAST(:s AS timestamptz), 'day', {_RANGE}",
}
CONTENT_ALLOWED_COLUMNS = {
    "figure",  # which figure a row of analytics_admin_dashboard belongs to: kpis, series, quality, usage
    "user_id",
    "email",
    "user_total",
    "provider",
    "model",
    "runs",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "errors",
    "fallbacks",
    "cache_tokens",  # a sum of token counts
    "unknown_cost_runs",  # a count of runs
    # counts of interrupted runs, by cause
    "interrupted",
    "interrupted_process_stopped",
    "interrupted_shutdown",
    "interrupted_user_stop",
    "interrupted_cut_stream",
    "period",
    "bucket",
    "latency_p50",
    "latency_p95",
    "ttft_p50",
    "ttft_p95",
    # prompt versions (migration 0012): the prompt by its hash and atom versions, never its text
    "prompt_sha256",
    "atom_versions",
    "answers",
    "thumbs_up",
    "thumbs_down",
    "superseded",
    "input_runs",
    "first_used",
    "last_used",
}


def _window() -> Filters:
    return Filters.last_days(2)


def _strings(value: Any) -> list[str]:
    """Every string reachable from a result (dataclass fields, DataFrame cells and labels, containers)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, pd.DataFrame):
        out = [str(c) for c in value.columns]
        for col in value.columns:
            out += [str(v) for v in value[col].tolist()]
        return out
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [s for f in dataclasses.fields(value) for s in _strings(getattr(value, f.name))]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list | tuple | set):
        return [s for v in value for s in _strings(v)]
    return [str(value)]


def _two_people() -> tuple[uuid.UUID, uuid.UUID]:
    admin, other = make_user(is_admin=True), make_user()
    fill_user(admin, runs=3, marker="alpha-admin")
    fill_user(other, runs=4, marker="bravo-secret-7731")
    with system_session() as s:  # every run from one prompt version
        s.execute(
            update(AgentRun)
            .where(col(AgentRun.user_id).in_([admin, other]))
            .values(prompt_sha256="c0ffee" * 10 + "beef", atom_versions=[["base-persona", 1]])
        )
    with user_session(other) as s:  # B rates an answer, with a comment only B may read
        first = s.execute(select(col(AgentRun.id)).where(col(AgentRun.user_id) == other).limit(1)).scalar_one()
        s.execute(
            update(AgentRun)
            .where(col(AgentRun.id) == first)
            .values(feedback=-1, feedback_comment="bravo-feedback-secret-5512")
        )
    return admin, other


@pytest.fixture
def people(any_db_url):
    """An administrator A and a user B, on SQLite and on PostgreSQL."""
    return _two_people()


@pytest.fixture
def pg_people(pg_url):
    return _two_people()


def test_admin_analytics_never_return_another_users_messages(people, any_db_url):
    admin, other = people
    with user_session(other) as s:
        b_runs = s.execute(
            text("SELECT id, user_message, output, feedback_comment FROM agent_runs WHERE user_id = :u"),
            {"u": other.hex if any_db_url.startswith("sqlite") else other},
        ).all()
    assert len(b_runs) == 4
    secrets = {r[1] for r in b_runs} | {r[2] for r in b_runs} | {"bravo-secret-7731"}
    secrets |= {r[3] for r in b_runs if r[3]}
    assert "bravo-feedback-secret-5512" in secrets
    f = _window()
    results: list[Any] = [
        analytics.load_admin_dashboard(admin_id=admin, filters=f, granularity=g)
        for g in analytics.GRANULARITIES
    ]
    results += [
        analytics.load_dashboard(user_id=admin, filters=f, granularity=g) for g in analytics.GRANULARITIES
    ]
    results += [
        analytics.kpis(user_id=admin, filters=f),
        analytics.filter_options(user_id=admin),
        analytics.recent_runs(user_id=admin, filters=f),
    ]
    dump = "\n".join(s for r in results for s in _strings(r))
    assert "alpha-admin" in dump  # the admin's own conversation title is there (it is theirs) ...
    for secret in secrets:
        assert secret not in dump  # ... but nothing of user B's content
    admin_dash = results[0]
    assert other in set(admin_dash.by_user["user_id"])  # B's usage is counted, as aggregates
    assert int(admin_dash.by_user.set_index("user_id").loc[other, "runs"]) == 4
    version = admin_dash.prompt_versions.prompt("c0ffee" * 10 + "beef")  # B's rating counts, as a number
    assert version is not None and (version["runs"], version["thumbs_down"]) == (7, 1)
    for run_id, *_ in b_runs:
        run_id = run_id if isinstance(run_id, uuid.UUID) else uuid.UUID(hex=run_id)
        with pytest.raises(NotFound):
            analytics.run_detail(user_id=admin, run_id=run_id)


def test_user_figures_include_only_their_rows(people):
    admin, other = people
    f = _window()
    assert analytics.kpis(user_id=other, filters=f).current.runs == 4
    assert analytics.kpis(user_id=admin, filters=f).current.runs == 3
    page = analytics.recent_runs(user_id=other, filters=f)
    assert len(page.rows) == 4 and set(page.rows["conversation"]) == {"conv bravo-secret-7731"}
    dash = analytics.load_dashboard(user_id=admin, filters=f)
    assert int(dash.series["runs"].sum()) == 3
    assert list(dash.top_conversations["title"]) == ["conv alpha-admin"]


def test_row_level_security_is_the_second_wall(pg_people):
    """Without the app's own user_id filter, RLS alone still limits every aggregate to the user."""
    _admin, other = pg_people
    f = _window()
    with user_session(other) as s:
        # the admin-path statement: no user_id predicate at all
        figures = figure_rows(s, (Part(KPIS), Part(KPIS, "previous"), Part(SERIES)), filters=f, user_id=None)
        unfiltered = figures.kpis()
        series = figures.frame(SERIES)
    assert unfiltered.current.runs == 4
    assert int(series["runs"].sum()) == 4


def test_non_admin_calling_admin_sql_functions_is_refused(pg_people):
    admin, other = pg_people
    now = datetime.now(UTC)
    params = {"s": now - timedelta(days=2), "e": now + timedelta(days=1)}
    for name, args in ADMIN_FUNCTIONS.items():
        for who in (other, None):  # a signed-in non-admin, and advisor_app with no identity at all
            with (
                pytest.raises(DBAPIError, match="administrator privileges required"),
                user_session(admin) as s,
            ):
                if who is None:
                    s.execute(text("SELECT set_config('app.user_id', '', true)"))
                else:
                    s.execute(text("SELECT set_config('app.user_id', :u, true)"), {"u": str(who)})
                s.execute(text(f"SELECT * FROM app.{name}({args})"), params).all()
        with user_session(admin) as s:  # the admin gets aggregates
            rows = s.execute(text(f"SELECT * FROM app.{name}({args})"), params).mappings().all()
            assert rows
            assert set(rows[0].keys()) <= CONTENT_ALLOWED_COLUMNS


def test_admin_functions_are_definer_pinned_and_not_public(pg_url):
    with user_session(make_user()) as s:
        rows = (
            s.execute(
                text(
                    "SELECT p.proname, p.prosecdef, p.proconfig, "
                    "       has_function_privilege('advisor_app', p.oid, 'EXECUTE') AS app_exec, "
                    "       has_function_privilege('advisor_system', p.oid, 'EXECUTE') AS system_exec, "
                    "       p.proargnames "
                    "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                    "WHERE n.nspname = 'app' AND p.proname LIKE 'analytics_admin_%'"
                )
            )
            .mappings()
            .all()
        )
    assert {r["proname"] for r in rows} == set(ADMIN_FUNCTIONS)
    for r in rows:
        assert r["prosecdef"] is True
        assert r["proconfig"][0] == "search_path=pg_catalog, public"
        assert r["app_exec"] is True
        assert r["system_exec"] is False  # EXECUTE revoked from PUBLIC
        outputs = {a for a in r["proargnames"] if not a.startswith("p_")}
        assert outputs <= CONTENT_ALLOWED_COLUMNS, outputs


def test_non_admin_is_refused_through_the_api(people):
    _admin, other = people
    with pytest.raises(analytics.AdminOnly):
        analytics.load_admin_dashboard(admin_id=other, filters=_window())
    with pytest.raises(analytics.AdminOnly):
        analytics.load_admin_dashboard(admin_id=uuid.uuid4(), filters=_window())
