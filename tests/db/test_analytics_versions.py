"""Prompt versions judged by their results: per prompt and per atom version == pandas over the raw
rows, for one user (both walls) and for admins (aggregates only), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core import analytics
from core.analytics import Filters
from core.db import NotFound
from core.feedback import set_feedback
from models.schemas import FeedbackIn
from tests.analytics_reference import (
    END,
    FILTER_CASES,
    Reference,
    assert_version_frames,
    expected_versions,
    seed_reference,
    select_runs,
)


@pytest.fixture
def data(any_db_url: str) -> Reference:
    return seed_reference(any_db_url)


@pytest.mark.parametrize("case", list(FILTER_CASES))
def test_a_users_prompt_versions_match_pandas(data, case):
    f = Filters(END - timedelta(days=14), END, **FILTER_CASES[case])
    user_id = data.result.user_ids[1]
    got = analytics.prompt_versions(user_id=user_id, filters=f, engine=data.engine)
    by_prompt, by_atom = expected_versions(select_runs(data.runs, f, user_id))
    assert_version_frames(got.by_prompt, by_prompt, ["prompt_sha256"])
    assert_version_frames(got.by_atom, by_atom, ["atom", "version"])
    assert list(got.by_prompt["last_used"]) == sorted(got.by_prompt["last_used"], reverse=True)
    dash = analytics.load_dashboard(user_id=user_id, filters=f, engine=data.engine)  # the same, in the page
    assert_version_frames(dash.prompt_versions.by_prompt, by_prompt, ["prompt_sha256"])


@pytest.mark.parametrize("case", list(FILTER_CASES))
def test_admin_prompt_versions_span_every_user_and_match_pandas(data, case):
    f = Filters(END - timedelta(days=14), END, **FILTER_CASES[case])
    dash = analytics.load_admin_dashboard(admin_id=data.result.admin_id, filters=f, engine=data.engine)
    by_prompt, by_atom = expected_versions(select_runs(data.runs, f, None))
    assert_version_frames(dash.prompt_versions.by_prompt, by_prompt, ["prompt_sha256"])
    assert_version_frames(dash.prompt_versions.by_atom, by_atom, ["atom", "version"])
    assert "user_id" not in dash.prompt_versions.by_prompt and "email" not in dash.prompt_versions.by_prompt


def test_feedback_changes_the_figures_of_its_prompt_and_only_its_owner_gives_it(data):
    runs, engine = data.runs, data.engine
    f = Filters(END - timedelta(days=21), END)
    owner, other = data.result.user_ids[1], data.result.user_ids[2]
    mine = runs[(runs["user_id"] == owner) & (runs["status"] == "ok") & runs["feedback"].isna()]
    run = mine.iloc[0]
    before = analytics.prompt_versions(user_id=owner, filters=f, engine=engine).prompt(run["prompt_sha256"])
    assert before is not None
    with pytest.raises(NotFound):
        set_feedback(user_id=other, data=FeedbackIn(run_id=run["id"], rating=1))
    set_feedback(user_id=owner, data=FeedbackIn(run_id=run["id"], rating=1, comment="  spot on  "))
    after = analytics.prompt_versions(user_id=owner, filters=f, engine=engine).prompt(run["prompt_sha256"])
    assert after is not None
    assert after["thumbs_up"] == before["thumbs_up"] + 1 and after["runs"] == before["runs"]
    assert after["thumbs_up_rate"] == pytest.approx(after["thumbs_up"] / after["runs"])
    set_feedback(user_id=owner, data=FeedbackIn(run_id=run["id"], rating=-1))
    flipped = analytics.prompt_versions(user_id=owner, filters=f, engine=engine).prompt(run["prompt_sha256"])
    assert flipped is not None
    assert (flipped["thumbs_up"], flipped["thumbs_down"]) == (before["thumbs_up"], before["thumbs_down"] + 1)
    assert analytics.prompt_versions(user_id=owner, filters=f, engine=engine).prompt("0" * 64) is None
