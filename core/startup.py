"""What an Advisor process does once when it starts: ``boot(settings)``.

Logging, the single sign-on check (OIDC mode: one clear line when Streamlit's ``[auth]`` section
cannot work, else the provider's endpoints join the guard's allow-list; ``core.oidc_config``), the
read-only guard, Sentry, ``alembic upgrade head``, the recovery sweep of runs left
pending by a stopped process (``core.run_leases``: their heartbeat went stale; the web server then
sweeps periodically, ``core.server_tasks``), forgetting stale sign-in addresses and expired sessions,
removing export files prepared
for sessions of an earlier process, the provider router and the prompt
atoms. The web server calls it from ``streamlit_app.py``'s lifespan hook, before it accepts a
connection; the page router (``ui/page_router.py``) calls it on every run too, which is how
``AppTest`` (no lifespan) and a server whose first boot failed (the database was down) get booted.

``boot`` is idempotent: once it has succeeded for a database URL, later calls return at once. A
boot that failed is tried again by the next call. The guard is installed right after logging, so
it is on for the rest of the boot, and it stays on when a later step fails.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from core import db, guard
from core.accounts import forget_stale_signin_addresses
from core.atoms import app_atoms
from core.error_reports import init_sentry
from core.export_files import exports_dir, remove_export_files
from core.log_setup import setup_logging
from core.oidc_config import oidc_endpoints_at_start
from core.providers.router import build_router
from core.run_leases import sweep_stale_runs
from core.sessions import forget_expired_sessions
from core.settings import Settings

__all__ = ["boot"]

_lock = threading.Lock()
_booted: dict[str, str] = {}  # database URL -> its schema revision after a successful boot


def boot(settings: Settings, *, auth_section: Mapping[str, object] | None = None) -> str:
    """Start the process for ``settings`` (once per database URL); returns the schema revision.

    ``auth_section``: the ``[auth]`` section of Streamlit's secrets (``ui.auth_view.auth_secrets``),
    read in OIDC mode only."""
    with _lock:
        revision = _booted.get(settings.database_url)
        if revision is not None:
            return revision
        setup_logging(settings)
        guard.install_guard(settings, extra_allowed=oidc_endpoints_at_start(settings, auth_section))
        init_sentry(settings)
        revision = db.migrate(settings.database_url) if settings.migrate_on_start else db.current_revision() or ""
        sweep_stale_runs()  # runs left pending by a process that stopped mid-answer (stale heartbeat)
        forget_stale_signin_addresses()  # kept only while they serve (ADVISOR_SIGNIN_KNOWN_ADDRESS_DAYS)
        forget_expired_sessions()  # sign-in sessions past their expiry (ADVISOR_SESSION_DAYS)
        remove_export_files(exports_dir(settings))  # prepared for sessions of an earlier process
        build_router(settings)  # SDK clients built (and imported) once, before the first turn
        app_atoms()  # prompt atoms loaded and validated at start: a malformed atom fails here, loudly
        _booted[settings.database_url] = revision
        return revision
