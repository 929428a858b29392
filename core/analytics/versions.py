"""Prompt versions judged by their results: the figures of the runs of each prompt and of each atom version.

Every run stores the sha256 of its system prompt and the atom versions that made it. The view
``statements.PROMPT_VERSIONS`` computes the figures (``figures.VERSION_SUMS`` and a few of
``figures.SUMS``) per (prompt, atom versions) in the same statement as the other views; here those
groups are added up, each figure as its definition says (``Sum.combine``: counts and cost add up,
first use is the earliest, last use the latest), per prompt and per atom version (a run counts for
every atom version its prompt was made of). The derived figures (shares, average input tokens, cost
per answer) are then computed from the added-up sums by ``results.finish``, as everywhere.

Runs with no recorded prompt (none was assembled) are left out: they say nothing of a prompt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from core.analytics.results import FigureRows, finish
from core.analytics.statements import PROMPT_VERSIONS

COMBINE = {s.name: s.combine for s in PROMPT_VERSIONS.sums}
FIGURE_COLUMNS = list(COMBINE)
BY_PROMPT_ORDER = (("last_used", False), ("prompt_sha256", True))
BY_ATOM_ORDER = (("atom", True), ("version", False))
AtomVersions = tuple[tuple[str, int], ...]


def atom_versions(value: Any) -> AtomVersions:
    """A run's ``atom_versions`` (JSON ``[[id, version], ...]``, or its text on SQLite) as pairs."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = json.loads(value)
    return tuple(sorted((str(atom), int(version)) for atom, version in value))


def atoms_label(pairs: AtomVersions) -> str:
    """``id vN, id vN, ...``: the atom versions of a prompt, as the pages show them."""
    return ", ".join(f"{atom} v{version}" for atom, version in pairs)


@dataclass(frozen=True)
class PromptVersions:
    """``by_prompt``: prompt_sha256, atoms (the atom versions, one label), then the figures: runs,
    answers, thumbs_up, thumbs_down, superseded, interrupted, errors, input_tokens, cache_tokens,
    input_runs, cost_usd, unknown_cost_runs, first_used, last_used, and derived: thumbs_up_rate,
    thumbs_down_rate, superseded_rate, interruption_rate, error_rate, avg_input_tokens,
    cost_per_answer; newest last use first. ``by_atom``: atom, version and the same figures."""

    by_prompt: pd.DataFrame = field(repr=False)
    by_atom: pd.DataFrame = field(repr=False)

    def prompt(self, sha256: str) -> dict[str, Any] | None:
        """The figures of one prompt (None when no run used it)."""
        rows = self.by_prompt[self.by_prompt["prompt_sha256"] == sha256]
        return None if rows.empty else dict(rows.iloc[0])


def _combined(groups: pd.DataFrame, keys: list[str], order: tuple[tuple[str, bool], ...]) -> pd.DataFrame:
    if groups.empty:
        return finish(groups[keys + FIGURE_COLUMNS], PROMPT_VERSIONS.sums)
    out = groups.groupby(keys, as_index=False, sort=False)[FIGURE_COLUMNS].agg(COMBINE)
    return finish(out, PROMPT_VERSIONS.sums, order)


def versions_from(figures: FigureRows) -> PromptVersions:
    """Per prompt and per atom version, from the rows of ``PROMPT_VERSIONS`` in ``figures``."""
    rows = [row for row in figures.rows(PROMPT_VERSIONS) if row["prompt_sha256"] is not None]
    groups = pd.DataFrame(
        [[row["prompt_sha256"], atom_versions(row["atom_versions"]), *(row[c] for c in FIGURE_COLUMNS)]
         for row in rows],
        columns=["prompt_sha256", "pairs", *FIGURE_COLUMNS],
    )
    groups = finish(groups, PROMPT_VERSIONS.sums)[["prompt_sha256", "pairs", *FIGURE_COLUMNS]]
    labels = groups.groupby("prompt_sha256", sort=False)["pairs"].agg(
        lambda sets: atoms_label(tuple(sorted({pair for pairs in sets for pair in pairs})))
    )
    by_prompt = _combined(groups, ["prompt_sha256"], BY_PROMPT_ORDER)
    by_prompt.insert(1, "atoms", [labels.get(sha, "") for sha in by_prompt["prompt_sha256"]])
    per_atom = groups.explode("pairs").dropna(subset=["pairs"])
    per_atom = per_atom.assign(
        atom=[pair[0] for pair in per_atom["pairs"]], version=[int(pair[1]) for pair in per_atom["pairs"]]
    )
    by_atom = _combined(per_atom, ["atom", "version"], BY_ATOM_ORDER)
    return PromptVersions(by_prompt=by_prompt, by_atom=by_atom)
