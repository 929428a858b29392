"""core.analytics.versions: groups of (prompt, atom versions) add up per prompt and per atom version,
each figure as its definition combines (counts add, first use is the earliest, last use the latest)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from core.analytics.results import FigureRows
from core.analytics.versions import atom_versions, atoms_label, versions_from

T = [datetime(2026, 3, d, tzinfo=UTC) for d in range(1, 6)]


def _group(sha: str | None, atoms: Any, **figures: Any) -> dict[str, Any]:
    zero = {
        "runs": 0, "answers": 0, "thumbs_up": 0, "thumbs_down": 0, "superseded": 0, "interrupted": 0,
        "errors": 0, "input_tokens": 0, "cache_tokens": 0, "input_runs": 0, "cost_usd": Decimal(0),
        "unknown_cost_runs": 0, "first_used": T[0], "last_used": T[0],
    }  # fmt: skip
    tags = {"figure": "prompt_versions", "period": "current", "prompt_sha256": sha, "atom_versions": atoms}
    return tags | zero | figures


def test_one_prompt_with_two_atom_sets_and_an_atom_in_two_prompts():
    rows = [
        # prompt A, made of base v1 + tone v2; then tone became v3 without changing the text
        _group("a" * 64, [["tone", 2], ["base", 1]], runs=4, answers=3, thumbs_up=2, input_tokens=400,
               cache_tokens=100, input_runs=4, cost_usd=Decimal("0.3"), first_used=T[0], last_used=T[2]),
        _group("a" * 64, '[["base", 1], ["tone", 3]]', runs=2, answers=1, thumbs_down=1, superseded=1,
               input_tokens=200, input_runs=2, cost_usd=Decimal("0.1"), first_used=T[1], last_used=T[3]),
        # prompt B (SQLite hands atom versions back as JSON text)
        _group("b" * 64, '[["base", 1]]', runs=1, answers=0, interrupted=1, errors=0, input_tokens=50,
               input_runs=1, cost_usd=Decimal("0.05"), first_used=T[4], last_used=T[4]),
        _group(None, None, runs=9),  # runs with no prompt say nothing of one
    ]  # fmt: skip
    versions = versions_from(FigureRows(rows))
    by_prompt = versions.by_prompt
    assert list(by_prompt["prompt_sha256"]) == ["b" * 64, "a" * 64]  # newest last use first
    a = versions.prompt("a" * 64)
    assert a is not None
    assert a["atoms"] == "base v1, tone v2, tone v3"
    assert (a["runs"], a["answers"], a["thumbs_up"], a["thumbs_down"], a["superseded"]) == (6, 4, 2, 1, 1)
    assert (a["first_used"], a["last_used"]) == (T[0], T[3])
    assert a["thumbs_up_rate"] == pytest.approx(2 / 6) and a["superseded_rate"] == pytest.approx(1 / 6)
    assert a["avg_input_tokens"] == pytest.approx(700 / 6)
    assert a["cost_per_answer"] == pytest.approx(0.4 / 4)
    b = versions.prompt("b" * 64)
    assert b is not None and b["interruption_rate"] == 1.0
    assert b["cost_per_answer"] != b["cost_per_answer"]  # NaN: no completed answer to divide by
    by_atom = versions.by_atom.set_index(["atom", "version"])
    assert list(by_atom.index) == [("base", 1), ("tone", 3), ("tone", 2)]
    assert by_atom.loc[("base", 1), "runs"] == 7 and by_atom.loc[("base", 1), "last_used"] == T[4]
    assert by_atom.loc[("tone", 2), "runs"] == 4 and by_atom.loc[("tone", 3), "thumbs_down"] == 1


def test_no_runs_gives_empty_tables_with_every_column():
    versions = versions_from(FigureRows([]))
    assert versions.by_prompt.empty and versions.by_atom.empty
    for column in ("prompt_sha256", "atoms", "runs", "thumbs_up_rate", "cost_per_answer", "last_used"):
        assert column in versions.by_prompt
    for column in ("atom", "version", "runs", "thumbs_down_rate", "avg_input_tokens"):
        assert column in versions.by_atom
    assert versions.prompt("a" * 64) is None


def test_atom_versions_read_from_json_or_lists():
    assert atom_versions(None) == ()
    assert atom_versions('[["b", 2], ["a", 1]]') == atom_versions([["a", 1], ["b", 2]]) == (("a", 1), ("b", 2))
    assert atoms_label((("a", 1), ("b", 2))) == "a v1, b v2"
