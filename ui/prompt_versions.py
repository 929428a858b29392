"""How prompt versions are shown: their figures (``core.analytics.versions``) as tables and tiles.

Used by the analytics page (every version, the user's or, for admins, everyone's) and by the prompt
preview page (the version it displays, and two versions side by side in its diff mode).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from core import analytics
from core.analytics import Filters, PromptVersions

# figure -> (label, kind) in the order the pages show them
FIGURES: dict[str, tuple[str, str]] = {
    "runs": ("Runs", "int"),
    "thumbs_up_rate": ("Thumbs up", "pct"),
    "thumbs_down_rate": ("Thumbs down", "pct"),
    "superseded_rate": ("Edited or regenerated", "pct"),
    "interruption_rate": ("Interrupted", "pct"),
    "avg_input_tokens": ("Avg input tokens", "int"),
    "cost_per_answer": ("Cost per answer", "usd"),
    "first_used": ("First used", "time"),
    "last_used": ("Last used", "time"),
}
HELP = (
    "Shares are of every run of the version. Edited or regenerated: runs replaced by a later version "
    "of the answer. Avg input tokens: input, cached input and cache writes per run that reported them. "
    "Cost per answer: the cost of every run of the version (failed and replaced ones included) over "
    "its completed answers."
)
ALL_TIME_START = datetime(2000, 1, 1, tzinfo=UTC)


def fmt(value: Any, kind: str) -> str:
    """A figure as the pages write it; "—" when there is none (no runs, nothing to divide by)."""
    if value is None or (isinstance(value, float) and value != value) or value is pd.NaT:
        return "—"
    if kind == "pct":
        return f"{value:.0%}"
    if kind == "usd":
        return f"${value:,.6f}" if value < 0.01 else f"${value:,.4f}"
    if kind == "time":
        return f"{pd.Timestamp(value):%Y-%m-%d %H:%M} UTC"
    return f"{value:,.0f}"


def user_versions(user_id: uuid.UUID) -> PromptVersions:
    """Every prompt version of the user's runs, all time (read fresh: a rating shows at once)."""
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    end = datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=UTC)
    return analytics.prompt_versions(user_id=user_id, filters=Filters(ALL_TIME_START, end))


def version_tiles(figures: Mapping[str, Any] | None) -> None:
    """The figures of one prompt version as tiles, or a note that no answer came from it yet."""
    if figures is None:
        st.caption("No answer has come from this exact prompt yet: its figures appear after the first one.")
        return
    names = list(FIGURES)
    for row in (names[:5], names[5:7]):
        for column, name in zip(st.columns(5), row, strict=False):
            label, kind = FIGURES[name]
            column.metric(label, fmt(figures.get(name), kind), help=HELP)
    st.caption(
        f"First used {fmt(figures.get('first_used'), 'time')} · last used {fmt(figures.get('last_used'), 'time')}"
    )


def side_by_side(versions: Mapping[str, Mapping[str, Any] | None]) -> pd.DataFrame:
    """One row per figure, one column per version (label -> its figures, None without runs)."""
    return pd.DataFrame(
        {
            label: [fmt(None if figures is None else figures.get(name), kind) for name, (_, kind) in FIGURES.items()]
            for label, figures in versions.items()
        },
        index=[label for label, _ in FIGURES.values()],
    )


def _table(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    out = df[keys].copy()
    for name, (label, kind) in FIGURES.items():
        out[label] = [fmt(v, kind) for v in df[name]]
    return out


def versions_view(versions: PromptVersions, *, key: str) -> None:
    """Every prompt version (newest use first) and every atom version, with their figures."""
    if versions.by_prompt.empty:
        st.caption("No run in this view recorded its prompt.")
        return
    by_prompt = versions.by_prompt.assign(prompt=versions.by_prompt["prompt_sha256"].str[:12])
    st.dataframe(
        _table(by_prompt, ["prompt", "atoms"]), hide_index=True, key=f"{key}_prompts",
        column_config={"atoms": st.column_config.TextColumn("Atoms", width="medium")},
    )  # fmt: skip
    st.caption("Prompts by the first 12 characters of their sha256 (the prompt preview shows yours). " + HELP)
    with st.expander("Per atom version", icon=":material/category:"):
        st.dataframe(_table(versions.by_atom, ["atom", "version"]), hide_index=True, key=f"{key}_atoms")
