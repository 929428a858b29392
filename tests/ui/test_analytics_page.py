"""AppTest of pages/analytics.py: data, empty state, filters, run detail, admin tab only for admins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import streamlit as st

from bench.seed_runs import seed_runs
from tests.factories import fill_user
from tests.ui.conftest import create_signed_in_user
from ui.frame import SignedInUser

PAGE = "pages/analytics.py"


@pytest.fixture(autouse=True)
def _fresh_cache():
    st.cache_data.clear()
    yield
    st.cache_data.clear()


@pytest.fixture
def seeded(app):
    """Two seeded users with runs in the last 30 days (the first one an administrator)."""
    from core.settings import get_settings

    today = datetime.now(UTC)
    end = datetime(today.year, today.month, today.day, tzinfo=UTC) + timedelta(days=1)
    result = seed_runs(
        database_url=get_settings().database_url, users=3, runs=600, seed=3, days=20, end=end, progress=False
    )
    return result


def _as(result, index: int | None = None) -> SignedInUser:
    """Seeded user ``index``; by default the busiest one who is not an administrator."""
    if index is None:
        index = max(range(1, len(result.user_ids)), key=lambda i: result.runs_per_user[i])
    return SignedInUser(
        id=result.user_ids[index], email=f"seed3-user{index:05d}@example.com", is_admin=index == 0
    )


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_page_renders_kpis_charts_and_runs(app, seeded):
    at = app(PAGE, user=_as(seeded))
    assert not at.exception
    assert not at.error
    metrics = _metrics(at)
    assert {"Runs", "Tokens", "Cost", "Error rate", "Latency p95", "First token p50"} <= set(metrics)
    assert int(metrics["Runs"].replace(",", "")) > 0
    assert len(at.get("plotly_chart")) == 3
    assert len(at.tabs) == 0  # not an administrator: no "All users" tab
    assert any(b.label.startswith("Download") for b in at.get("download_button"))
    table = next(d for d in at.dataframe if d.key == "an_runs_table")
    assert 0 < len(table.value) <= 25
    assert "user_message" not in table.value.columns and "output" not in table.value.columns


def test_selecting_a_run_opens_its_detail(app, seeded):
    at = app(PAGE, user=_as(seeded))
    at.session_state["an_runs_table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert not at.exception
    texts = [t.value for t in at.text]
    assert texts, "the selected run's message is shown"
    assert any(m.value.startswith("**Run ") for m in at.markdown)


def test_filters_change_the_figures(app, seeded):
    at = app(PAGE, user=_as(seeded))
    all_runs = int(_metrics(at)["Runs"].replace(",", ""))
    at.multiselect(key="an_statuses").set_value(["error"]).run()
    assert not at.exception, at.exception
    errors = int(_metrics(at)["Runs"].replace(",", ""))
    assert 0 < errors < all_runs
    assert _metrics(at)["Error rate"] == "100.0%"
    at.multiselect(key="an_statuses").set_value([]).run()
    at.multiselect(key="an_providers").set_value(["demo"]).run()
    demo = int(_metrics(at)["Runs"].replace(",", ""))
    assert 0 < demo < all_runs


def test_filters_matching_nothing_show_a_friendly_message(app, seeded):
    at = app(PAGE, user=_as(seeded))
    at.multiselect(key="an_statuses").set_value(["pending"]).run()
    assert not at.exception
    assert any("No runs match these filters" in i.value for i in at.info)
    assert not at.metric


def test_no_runs_at_all_is_a_friendly_empty_state(app):
    at = app(PAGE)
    assert not at.exception
    assert not at.error
    assert any("No runs yet" in i.value for i in at.info)
    assert not at.get("plotly_chart")


def test_admin_tab_only_for_admins_and_shows_users(app, seeded):
    at = app(PAGE, user=_as(seeded, 0))
    assert not at.exception
    assert [t.label for t in at.tabs] == ["My usage", "All users"]
    everyone = at.tabs[1]
    tables = [d.value for d in everyone.dataframe]
    users = next(t for t in tables if "email" in t.columns and "model" not in t.columns)
    per_model = next(t for t in tables if "email" in t.columns and "model" in t.columns)
    assert int(users["runs"].sum()) == int(per_model["runs"].sum()) == 600  # seeded over the last 20 days
    assert set(users["email"]) == {f"seed3-user{i:05d}@example.com" for i in range(3)}
    for table in tables:
        assert not {"user_message", "output", "title"} & set(table.columns)


def test_user_with_own_runs_sees_only_their_own_count(app, seeded):
    user = create_signed_in_user()
    fill_user(user.id, runs=4, marker="own")
    at = app(PAGE, user=user)
    assert not at.exception
    assert _metrics(at)["Runs"] == "4"
    table = next(d for d in at.dataframe if d.key == "an_runs_table")
    assert len(table.value) == 4


def _run_headers(at) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith("**Run ")]


def test_a_selected_run_does_not_carry_over_to_another_page_of_runs(app, seeded):
    """The selection belongs to one page of one filter: paging on shows no run nobody selected
    (row 0 of the new page used to open as if selected)."""
    at = app(PAGE, user=_as(seeded))
    at.session_state["an_runs_table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert len(_run_headers(at)) == 1  # row 0 of page 1 selected: its detail is shown
    at.number_input(key="an_runs_page").set_value(2).run()
    assert not at.exception and _run_headers(at) == []


def test_quota_panel_shows_a_zero_quota_as_reached(app):
    """A quota of 0 refuses every turn (the limiter compares used >= quota): the panel says so, and
    shows today's tokens against the daily quota too."""
    from decimal import Decimal

    from sqlalchemy import update
    from sqlmodel import col

    from core.db import system_session
    from models import User

    user = create_signed_in_user()
    fill_user(user.id, runs=2, marker="q")
    with system_session() as s:
        s.execute(update(User).where(col(User.id) == user.id).values(quota_cost_per_month_usd=Decimal(0)))
    at = app(PAGE, user=user)
    assert not at.exception
    texts = [p.proto.text for p in at.get("progress")]
    assert any(t.startswith("$0.00 of $0.00 (100%)") for t in texts), texts
    assert any(t.startswith("Today: ") and "tokens" in t for t in texts), texts
    assert any("monthly cost quota is reached" in e.value for e in at.error)


def test_tokens_count_cached_input_and_unknown_costs_are_named(app):
    """The Tokens tile counts cached input and cache writes (as the daily quota does), and runs whose
    cost is unknown are named under the tiles and in the quota panel instead of adding $0 silently."""
    import uuid
    from decimal import Decimal
    from typing import Any

    from core.db import user_session
    from models import AgentRun, Conversation

    user = create_signed_in_user()
    with user_session(user.id) as s:
        conv = Conversation(user_id=user.id, title="costs", agent="general")
        s.add(conv)
        s.flush()
        common: dict[str, Any] = {
            "user_id": user.id, "conversation_id": conv.id, "user_message": "q", "provider": "openai"
        }
        s.add(AgentRun(**common, output="priced", status="ok", model="gpt-4o-mini", input_tokens=100,
                       cached_input_tokens=50, cache_write_tokens=10, output_tokens=40,
                       cost_usd=Decimal("0.01"), request_id=uuid.uuid4().hex[:12]))
        # a model missing from pricing.toml: tokens reported, cost unknown
        s.add(AgentRun(**common, output="unpriced", status="ok", model="gpt-unlisted", input_tokens=200,
                       output_tokens=30, cost_usd=None, request_id=uuid.uuid4().hex[:12]))
    at = app(PAGE, user=user)
    assert not at.exception
    metrics = _metrics(at)
    assert metrics["Tokens"] == "430"  # 100 + 50 cached + 10 cache-write + 40 + 200 + 30
    assert metrics["Cost"] == "$0.0100"
    warnings = [w.value for w in at.warning]
    assert any("leaves out 1 run whose cost is unknown" in w for w in warnings), warnings
    captions = [c.value for c in at.caption]
    assert any("1 run this month has no known cost" in c for c in captions), captions


def _runs_in(table) -> int:
    return sum(int(v.replace(",", "")) for v in table.value["Runs"])


def test_prompt_versions_are_judged_by_their_runs_for_the_user_and_across_users(app, seeded):
    """Every seeded run recorded its prompt: the user's prompt versions count their runs (the KPI),
    the administrators' count every user's, with no user and no content in either table."""
    at = app(PAGE, user=_as(seeded))
    assert not at.exception
    mine = next(d for d in at.dataframe if "atoms" in d.value.columns)
    assert _runs_in(mine) == int(_metrics(at)["Runs"].replace(",", ""))
    assert {"prompt", "atoms", "Thumbs up", "Thumbs down", "Edited or regenerated", "Cost per answer"} <= set(
        mine.value.columns
    )
    assert all(len(p) == 12 for p in mine.value["prompt"])
    assert any(v.endswith("%") and v != "0%" for v in mine.value["Thumbs up"])  # the seeded ratings
    atoms = next(d for d in at.dataframe if "atom" in d.value.columns)
    assert {"atom", "version"} <= set(atoms.value.columns) and len(atoms.value) > 0

    admin = app(PAGE, user=_as(seeded, 0))
    everyone = next(d for d in admin.tabs[1].dataframe if "atoms" in d.value.columns)
    assert _runs_in(everyone) == 600
    assert not {"email", "user_id", "user_message", "output"} & set(everyone.value.columns)


def test_answers_cut_off_are_counted_by_cause(app):
    """Interrupted answers are counted under the tiles, each by its cause (C24: a crash is not hidden)."""
    import uuid
    from typing import Any

    from sqlmodel import select

    from core.db import user_session
    from models import AgentRun, Conversation

    user = create_signed_in_user()
    with user_session(user.id) as s:
        conv = Conversation(user_id=user.id, title="cuts", agent="general")
        s.add(conv)
        s.flush()
        common: dict[str, Any] = {"user_id": user.id, "conversation_id": conv.id, "user_message": "q",
                                  "provider": "openai", "model": "gpt-4o-mini", "output": "part"}
        codes = ["process_stopped", "process_stopped", "shutdown", "cancelled", "timeout", None]
        for _ in codes:
            s.add(AgentRun(**common, status="pending", request_id=uuid.uuid4().hex[:12]))
            s.flush()
        runs = s.exec(select(AgentRun).where(AgentRun.user_id == user.id)).all()
        for run, code in zip(runs, codes, strict=True):  # closed as the turn path and the sweep close them
            run.status, run.error_code = "interrupted", code
        s.add(AgentRun(**{**common, "output": "whole"}, status="pending", request_id="ok"))
    with user_session(user.id) as s:
        [whole] = s.exec(select(AgentRun).where(AgentRun.request_id == "ok")).all()
        whole.status = "ok"
    at = app(PAGE, user=user)
    assert not at.exception
    captions = [c.value for c in at.caption]
    assert any(
        "Answers cut off part way: 6 — the server process died: 2 · the server was stopped: 1 · stopped or "
        "left by the user: 1 · the provider's stream broke: 2." in c for c in captions
    ), captions
