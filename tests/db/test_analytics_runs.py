"""core.analytics.runs: a user's runs page by page, newest first, without content; one run in full."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from core import analytics
from core.analytics import Filters
from core.db import NotFound
from tests.analytics_reference import END, Reference, seed_reference, select_runs


@pytest.fixture
def data(any_db_url: str) -> Reference:
    return seed_reference(any_db_url)


def test_recent_runs_pages_newest_first_and_detail(data):
    result, runs, convs, engine = data.result, data.runs, data.convs, data.engine
    f = Filters(END - timedelta(days=10), END, statuses=("ok", "error", "interrupted"))
    user_id = result.user_ids[2]
    expected = select_runs(runs, f, user_id).sort_values(["created_at", "id"], ascending=False)
    seen, page = [], 0
    while True:
        p = analytics.recent_runs(user_id=user_id, filters=f, page=page, page_size=40, engine=engine)
        seen += list(p.rows["id"])
        assert not {"user_message", "output"} & set(p.rows.columns)
        if not p.has_more:
            break
        page += 1
    assert page >= 1
    assert seen == list(expected["id"])
    raw = expected.iloc[0]
    d = analytics.run_detail(user_id=user_id, run_id=raw["id"], engine=engine)
    assert (d.user_message, d.output, d.request_id, d.prompt_sha256, d.status) == (
        raw["user_message"],
        raw["output"],
        raw["request_id"],
        raw["prompt_sha256"],
        raw["status"],
    )
    assert d.atom_versions == raw["atom_versions"]
    assert d.conversation_title == dict(zip(convs["id"], convs["title"], strict=True))[raw["conversation_id"]]
    with pytest.raises(NotFound):
        analytics.run_detail(user_id=user_id, run_id=uuid.uuid4(), engine=engine)
