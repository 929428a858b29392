"""Status: is everything Advisor depends on up? Database, AI providers, Redis, guard, Sentry, version.

Every signed-in user sees whether each part is up; connection details (URLs, endpoints, the masked
API keys, migration revisions, error texts) are for administrators only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import streamlit as st

from core.settings import get_settings
from core.status import collect_status
from ui.frame import page


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


def _table(columns: Mapping[str, Sequence[object]]) -> None:
    """A table with named header cells; it scrolls by keyboard as well when it is wider than the page."""
    st.dataframe(pd.DataFrame(columns), hide_index=True, width="stretch")


def _facts(facts: dict[str, object]) -> None:
    """Facts as a two-column table: "item" and "value"."""
    _table({"item": list(facts), "value": list(facts.values())})


with page("status") as user:
    details = user.is_admin
    st.title("Status")
    st.button("Refresh", key="status_refresh", icon=":material/refresh:")
    report = collect_status(get_settings())

    if report.demo_mode:
        st.info(
            "Demo mode: no AI provider is configured, answers come from the offline demo provider (cost 0).",
            icon=":material/science:",
        )

    st.header("Database")
    db = report.database
    if details:
        _facts(
            {
                "backend": db.backend,
                "URL": db.url,
                "reachable": _yes(db.reachable) + (f" ({db.error})" if db.error else ""),
                "migrated": _yes(db.migrated),
                "current revision": db.current_revision or "none",
                "head revision": db.head_revision or "unknown",
            }
        )
    else:
        _facts({"backend": db.backend, "reachable": _yes(db.reachable), "migrated": _yes(db.migrated)})

    st.header("AI providers")
    if report.providers_error:
        st.error(
            f"Providers are misconfigured: {report.providers_error}"
            if details
            else "The AI providers are misconfigured: an administrator has to fix the settings."
        )
    connection = (
        {
            "endpoint": [p.base_url or "SDK default" for p in report.providers],
            "API key": [p.api_key or "not set" for p in report.providers],
        }
        if details
        else {}
    )
    _table(
        {
            "provider": [p.name for p in report.providers],
            "model": [p.model for p in report.providers],
            **connection,
            "circuit breaker": [p.breaker for p in report.providers],
            "failures in a row": [p.consecutive_failures for p in report.providers],
            "last error": [p.last_error_kind or "none" for p in report.providers],
            "last error at (UTC)": [
                p.last_error_at.strftime("%Y-%m-%d %H:%M:%S") if p.last_error_at else "never"
                for p in report.providers
            ],
        }
    )
    st.caption("Breaker states are those of this app process; they reset when it restarts.")

    st.header("Redis")
    if report.redis is None:
        st.write("Not configured: rate limits are kept in this process's memory.")
    else:
        r = report.redis
        detail = f"{r.latency_ms} ms" if r.reachable else (r.error or "error")
        if details:
            _facts({"URL": r.url, "reachable": f"{_yes(r.reachable)} ({detail})"})
        else:
            _facts({"reachable": _yes(r.reachable)})

    if details and report.default_secret:
        st.warning(
            "`ADVISOR_DELETION_SALT` is at its published default. It keys the hashes in deletion records "
            "and in the rate limiter's keys: set a long random value of your own (the same on every "
            "replica) before real users sign up.",
            icon=":material/key:",
        )
    st.header("Trust and operations")
    guard = report.guard_mode + (
        "" if report.guard_mode == report.guard_configured else f" (configured: {report.guard_configured})"
    )
    _facts({"read-only guard": guard, "Sentry": "on" if report.sentry_on else "off", "version": report.version})
    if not details:
        st.caption("Connection details (addresses, endpoints, keys, revisions) are shown to administrators.")
