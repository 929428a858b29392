"""Usage analytics: your runs, tokens, cost, latency and quality; all users for administrators."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pandas as pd
import plotly.express as px
import streamlit as st

from core import analytics
from core.analytics import AdminDashboard, Dashboard, FilterOptions, Filters, KpiComparison, RunsPage
from core.db import NotFound
from core.quotas import UsageSummary, usage_summary
from ui.frame import page
from ui.messages import render_answer
from ui.prompt_versions import versions_view
from ui.text import literal

PAGE_SIZE = 25
MEASURES = {"Runs": "runs", "Tokens": "tokens", "Cost (USD)": "cost_usd"}


# ---- cached reads: shared by every session, so each takes the user id (and filters) as arguments
@st.cache_data(ttl=30, show_spinner=False)
def cached_options(user_id: uuid.UUID) -> FilterOptions:
    return analytics.filter_options(user_id=user_id)


@st.cache_data(ttl=30, show_spinner=False)
def cached_dashboard(user_id: uuid.UUID, filters: Filters, granularity: analytics.Granularity) -> Dashboard:
    return analytics.load_dashboard(user_id=user_id, filters=filters, granularity=granularity)


@st.cache_data(ttl=30, show_spinner=False)
def cached_runs(user_id: uuid.UUID, filters: Filters, page_no: int) -> RunsPage:
    return analytics.recent_runs(user_id=user_id, filters=filters, page=page_no, page_size=PAGE_SIZE)


@st.cache_data(ttl=30, show_spinner=False)
def cached_usage(user_id: uuid.UUID) -> UsageSummary:
    return usage_summary(user_id=user_id)


@st.cache_data(ttl=30, show_spinner=False)
def cached_admin(admin_id: uuid.UUID, filters: Filters, granularity: analytics.Granularity) -> AdminDashboard:
    return analytics.load_admin_dashboard(admin_id=admin_id, filters=filters, granularity=granularity)


# ---- small views
def _fmt(value: float | None, kind: str) -> str:
    if value is None:
        return "—"
    if kind == "usd":
        return f"${value:,.4f}" if abs(value) < 1 else f"${value:,.2f}"
    if kind == "pct":
        return f"{value:.1%}"
    if kind == "ms":
        return f"{value:,.0f} ms"
    return f"{value:,.0f}"


HELP = {  # what the tile counts, then how its change is read
    "tokens": "Input (including cached input and cache writes) and output tokens, as the daily token "
    "quota counts them. ",
    "cost_usd": "Runs whose cost is unknown are not in this sum (see the note below the tiles). ",
    "fallback_rate": "Answers that came from a fallback provider, out of all runs. ",
    "latency_p50_ms": "Over completed answers (a failed run's time to fail is not a latency). ",
    "latency_p95_ms": "Over completed answers (a failed run's time to fail is not a latency). ",
}

TILES = (
    ("Runs", "runs", "int", "normal"),
    ("Tokens", "tokens", "int", "normal"),
    ("Cost", "cost_usd", "usd", "inverse"),
    ("Error rate", "error_rate", "pct", "inverse"),
    ("Fallback rate", "fallback_rate", "pct", "inverse"),
    ("Latency p50", "latency_p50_ms", "ms", "inverse"),
    ("Latency p95", "latency_p95_ms", "ms", "inverse"),
    ("First token p50", "ttft_p50_ms", "ms", "inverse"),
    ("First token p95", "ttft_p95_ms", "ms", "inverse"),
)


def kpi_tiles(kpis: KpiComparison) -> None:
    for row in (TILES[:5], TILES[5:]):
        for col, (label, name, kind, color) in zip(st.columns(len(row)), row, strict=True):
            change = kpis.change(name)
            delta = None if change is None else _fmt(change, kind).replace("$-", "-$")
            if delta is not None and change is not None and change > 0:
                delta = "+" + delta
            col.metric(
                label,
                _fmt(kpis.value(name), kind),
                delta=delta,
                delta_color=color,  # type: ignore[arg-type]
                help=HELP.get(name, "") + "Change against the previous period of equal length.",
                border=True,
            )
    unknown = kpis.current.unknown_cost_runs
    if unknown:
        st.warning(
            f"The cost leaves out {unknown:,} run{'s' if unknown != 1 else ''} whose cost is unknown: "
            "a model missing from `pricing.toml`, or an answer cut off before the provider reported "
            "its output tokens. Their tokens are counted.",
            icon=":material/price_change:",
        )
    k = kpis.current
    if k.interrupted:
        st.caption(
            f"Answers cut off part way: {k.interrupted:,} — the server process died: "
            f"{k.interrupted_process_stopped:,} · the server was stopped: {k.interrupted_shutdown:,} · "
            f"stopped or left by the user: {k.interrupted_user_stop:,} · the provider's stream broke: "
            f"{k.interrupted_cut_stream:,}."
        )


def _date_axis(fig: Any, buckets: pd.Series) -> Any:
    """Dates, not clock times, on the x axis; one bucket gets a day of room on each side."""
    fig.update_xaxes(type="date", tickformat="%b %d", hoverformat="%Y-%m-%d")
    if len(buckets) and buckets.nunique() < 3:
        lo, hi = pd.to_datetime(buckets.min()), pd.to_datetime(buckets.max())
        fig.update_xaxes(range=[lo - pd.Timedelta(days=1), hi + pd.Timedelta(days=1)], dtick=86_400_000)
    return fig


def usage_charts(series: pd.DataFrame, quality: pd.DataFrame, *, key: str) -> None:
    measure = st.radio("Measure", list(MEASURES), horizontal=True, key=f"{key}_measure")
    data = series.assign(provider=series["provider"].fillna("(none)"))
    column = MEASURES[measure or "Runs"]
    fig = px.bar(data, x="bucket", y=column, color="provider", labels={"bucket": "", column: measure})
    st.plotly_chart(_date_axis(fig, data["bucket"]), key=f"{key}_usage")
    left, right = st.columns(2)
    latency = quality.melt(
        id_vars="bucket",
        value_vars=["latency_p50", "latency_p95", "ttft_p50", "ttft_p95"],
        var_name="figure",
        value_name="ms",
    )
    left.plotly_chart(
        _date_axis(
            px.line(
                latency,
                x="bucket",
                y="ms",
                color="figure",
                markers=True,
                title="Latency and time to first token",
                labels={"bucket": ""},
            ),
            latency["bucket"],
        ),
        key=f"{key}_latency",
    )
    rates = quality.melt(
        id_vars="bucket", value_vars=["error_rate", "fallback_rate"], var_name="figure", value_name="rate"
    )
    fig = px.line(
        rates,
        x="bucket",
        y="rate",
        color="figure",
        markers=True,
        title="Error and fallback rate",
        labels={"bucket": ""},
    )
    fig.update_yaxes(tickformat=".0%")
    right.plotly_chart(_date_axis(fig, rates["bucket"]), key=f"{key}_rates")


def quota_panel(user_id: uuid.UUID) -> None:
    usage = cached_usage(user_id)
    spent, limit = usage.cost_month_usd, usage.cost_per_month_usd
    projected = analytics.project_month_cost(cost_month_usd=spent)
    st.header("This month against your quota")
    share = float(spent / limit) if limit > 0 else 1.0  # a quota of 0 is used up from the start
    st.progress(min(share, 1.0), text=f"${spent:,.2f} of ${limit:,.2f} ({share:.0%})")
    tokens, token_limit = usage.tokens_today, usage.tokens_per_day
    token_share = tokens / token_limit if token_limit > 0 else 1.0
    st.progress(min(token_share, 1.0), text=f"Today: {tokens:,} of {token_limit:,} tokens ({token_share:.0%})")
    if usage.unknown_cost_runs_month:
        n = usage.unknown_cost_runs_month
        st.caption(
            f"{n:,} run{'s' if n != 1 else ''} this month {'have' if n != 1 else 'has'} no known cost: "
            f"{'they are' if n != 1 else 'it is'} not in this month's cost above or in the cost quota."
        )
    if usage.quota_reached is not None:  # as the limiter decides (core.quotas.quota_refusal)
        which = "daily token" if usage.quota_reached == "tokens_per_day" else "monthly cost"
        st.error(f"Your {which} quota is reached: new messages are refused until it resets.",
                 icon=":material/block:")
    message = f"At the current pace: about ${projected:,.2f} by the end of the month."
    if limit > 0 and projected > limit:
        st.warning(message + " That is over your monthly quota.", icon=":material/trending_up:")
    else:
        st.caption(message)


def run_detail_view(user_id: uuid.UUID, run_id: uuid.UUID) -> None:
    try:
        run = analytics.run_detail(user_id=user_id, run_id=run_id)
    except NotFound:
        st.warning("That run is no longer available.")
        return
    with st.container(border=True):
        st.markdown(f"**Run {run.id}** · {run.created_at:%Y-%m-%d %H:%M:%S} UTC · {literal(run.conversation_title)}")
        a, b, c = st.columns(3)
        a.markdown(f"Status **{run.status}**" + (f" · error `{run.error_code}`" if run.error_code else ""))
        b.markdown(
            f"{run.provider or '—'} / {run.model or '—'}"
            + (f" (fell back from {run.fallback_from})" if run.fallback_from else "")
        )
        c.markdown(f"Request id `{run.request_id or '—'}`")
        st.json(
            {
                "usage": {
                    "input_tokens": run.input_tokens,
                    "output_tokens": run.output_tokens,
                    "cached_input_tokens": run.cached_input_tokens,
                    "cache_write_tokens": run.cache_write_tokens,
                    "cost_usd": None if run.cost_usd is None else str(run.cost_usd),
                    "ttft_ms": run.ttft_ms,
                    "latency_ms": run.latency_ms,
                },
                "prompt_sha256": run.prompt_sha256,
                "atom_versions": run.atom_versions,
            },
            expanded=False,
        )
        st.markdown("**Your message**")
        st.text(run.user_message)
        st.markdown("**Answer**")
        if run.output:
            render_answer(run.output)
        else:
            st.markdown("_(no output)_")


def recent_runs_view(user_id: uuid.UUID, filters: Filters) -> None:
    st.header("Recent runs")
    page_no = int(st.number_input("Page", min_value=1, value=1, step=1, key="an_runs_page")) - 1
    runs = cached_runs(user_id, filters, page_no)
    if runs.rows.empty:
        st.caption("No runs on this page.")
        return
    table = runs.rows.drop(columns=["id"])
    # A selection belongs to one page of one filter: a new page or filter starts unselected
    # (row 0 of the new page would otherwise open as if selected).
    shown = (page_no, filters)
    if st.session_state.get("an_runs_shown") != shown:
        st.session_state.pop("an_runs_table", None)
        st.session_state["an_runs_shown"] = shown
    event: Any = st.dataframe(
        table,
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        key="an_runs_table",
        column_config={"cost_usd": st.column_config.NumberColumn(format="$%.6f")},
    )
    st.caption(
        "Select a row to see the run's details." + (" More on the next page." if runs.has_more else "")
    )
    selected = event.selection.rows if event is not None else []
    if selected and selected[0] < len(runs.rows):
        run_detail_view(user_id, runs.rows["id"].iloc[selected[0]])


def read_filters(options: FilterOptions) -> tuple[Filters, analytics.Granularity]:
    today = datetime.now(UTC).date()
    with st.expander("Filters", expanded=False, icon=":material/filter_list:"):
        left, right = st.columns(2)
        chosen = left.date_input(
            "Date range (UTC)", value=(today - timedelta(days=29), today), max_value=today, key="an_range"
        )
        granularity = (
            right.segmented_control(
                "Group by", list(analytics.GRANULARITIES), default="day", key="an_granularity"
            )
            or "day"
        )
        a, b, c = st.columns(3)
        providers = a.multiselect("Providers", options.providers, key="an_providers")
        models = b.multiselect("Models", options.models, key="an_models")
        statuses = c.multiselect("Statuses", options.statuses, key="an_statuses")
    days = [d for d in (chosen if isinstance(chosen, tuple | list) else (chosen,)) if isinstance(d, date)]
    first, last = (days[0], days[-1]) if days else (today - timedelta(days=29), today)
    filters = Filters(
        start=datetime.combine(first, time(), UTC),
        end=datetime.combine(last + timedelta(days=1), time(), UTC),
        providers=tuple(providers),
        models=tuple(models),
        statuses=tuple(statuses),
    )
    return filters, granularity  # type: ignore[return-value]


def my_usage(
    user_id: uuid.UUID, options: FilterOptions, filters: Filters, granularity: analytics.Granularity
) -> None:
    if options.first_run_at is None:
        st.info(
            "No runs yet. Ask the advisor something in **Chat** and your usage, cost and latency "
            "will show up here.",
            icon=":material/insights:",
        )
        return
    dash = cached_dashboard(user_id, filters, granularity)
    quota_panel(user_id)
    if dash.is_empty:
        st.info(
            "No runs match these filters. Widen the date range or clear a filter.",
            icon=":material/filter_alt_off:",
        )
        return
    kpi_tiles(dash.kpis)
    usage_charts(dash.series, dash.quality, key="an")
    st.download_button(
        "Download this view (CSV)",
        dash.series.to_csv(index=False).encode(),
        file_name=f"advisor-usage-{filters.start:%Y%m%d}-{filters.end:%Y%m%d}.csv",
        mime="text/csv",
        key="an_csv",
        icon=":material/download:",
    )
    left, right = st.columns(2)
    left.header("By provider and model")
    left.dataframe(dash.by_model, hide_index=True)
    right.header("Top conversations by cost")
    right.dataframe(dash.top_conversations.drop(columns=["conversation_id"]), hide_index=True)
    st.header("Prompt versions")
    versions_view(dash.prompt_versions, key="an_versions")
    recent_runs_view(user_id, filters)


def all_users(admin_id: uuid.UUID, filters: Filters, granularity: analytics.Granularity) -> None:
    try:
        dash = cached_admin(admin_id, filters, granularity)
    except analytics.AdminOnly:
        st.error("Only administrators can see usage across users.")
        return
    if dash.kpis.current.runs == 0:
        st.info("No runs from any user match these filters.")
        return
    st.caption("Aggregates across all users. Message content is never shown here.")
    kpi_tiles(dash.kpis)
    usage_charts(dash.series, dash.quality, key="an_admin")
    st.header("Per user")
    st.dataframe(dash.by_user.drop(columns=["user_id"]), hide_index=True, key="an_admin_users")
    st.header("Per user and model")
    st.dataframe(dash.by_user_model.drop(columns=["user_id"]), hide_index=True, key="an_admin_user_models")
    st.header("Prompt versions across all users")
    versions_view(dash.prompt_versions, key="an_admin_versions")
    st.download_button(
        "Download per-user figures (CSV)",
        dash.by_user_model.to_csv(index=False).encode(),
        file_name="advisor-usage-by-user.csv",
        mime="text/csv",
        key="an_admin_csv",
    )


with page("analytics") as user:
    st.title("Usage analytics")
    options = cached_options(user.id)
    filters, granularity = read_filters(options)
    if user.is_admin:
        mine, everyone = st.tabs(["My usage", "All users"])
        with mine:
            my_usage(user.id, options, filters, granularity)
        with everyone:
            all_users(user.id, filters, granularity)
    else:
        my_usage(user.id, options, filters, granularity)
