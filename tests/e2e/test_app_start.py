"""How the app process starts (``streamlit run streamlit_app.py``), without a browser.

* Invalid settings stop the start with one clear line and a non-zero exit status, no traceback.
* A database that is down at start does not stop the server: the start is logged with a reference,
  the read-only guard is on anyway, and the server answers its health check (the page router boots
  again on each page view and shows visitors a reference until the database is back; the AppTest
  of that is ``tests/ui/test_boot_failure.py``).
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import launch_app, stop_process, wait_http_ok

EXIT_TIMEOUT_S = 60.0


@pytest.mark.timeout(120)
def test_invalid_settings_stop_the_start_with_one_line(tmp_path: Path) -> None:
    proc, _, log = launch_app({"ADVISOR_PROVIDERS": "openai,bogus", "ADVISOR_DATA_DIR": str(tmp_path)}, tmp_path)
    try:
        status = proc.wait(timeout=EXIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        stop_process(proc)
        pytest.fail(f"the app did not stop on invalid settings:\n{log.read_text(errors='replace')}")
    text = log.read_text(errors="replace")
    assert status != 0, text
    lines = [line for line in text.splitlines() if "Advisor cannot start" in line]
    assert len(lines) == 1 and "ADVISOR_PROVIDERS" in lines[0] and "bogus" in lines[0], text
    assert "Traceback" not in text, text


@pytest.mark.timeout(180)
def test_a_database_down_at_start_is_logged_and_the_server_still_answers(tmp_path: Path) -> None:
    env = {
        "ADVISOR_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/nowhere",  # nothing listens
        "ADVISOR_DATA_DIR": str(tmp_path / "data"),
        "ADVISOR_GUARD": "enforce",
        "ADVISOR_LOG_LEVEL": "INFO",
    }
    proc, url, log = launch_app(env, tmp_path)
    try:
        wait_http_ok(f"{url}/_stcore/health", proc, log, "streamlit run streamlit_app.py")
        time.sleep(0.5)  # let the log reach the file
        text = log.read_text(errors="replace")
    finally:
        stop_process(proc)
    assert "guard enforce:" in text, text
    assert re.search(r"ERROR advisor\.errors \[[0-9a-f]{12}\] unhandled OperationalError in start", text), text
