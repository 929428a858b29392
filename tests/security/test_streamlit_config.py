"""The Streamlit configuration: no telemetry, no error details for users, XSRF on, headless, and no
garbage collection forced after every script run (it delayed each chat turn)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from streamlit import config as st_config

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / ".streamlit" / "config.toml"

EXPECTED = {
    "browser.gatherUsageStats": False,
    "browser.serverAddress": "localhost",
    "client.showErrorDetails": "none",
    "client.showErrorLinks": False,
    "client.toolbarMode": "minimal",
    "runner.postScriptGC": False,
    "server.enableXsrfProtection": True,
    "server.enableCORS": True,
    "server.headless": True,
    "server.runOnSave": False,
    "server.fileWatcherType": "none",
    "server.showEmailPrompt": False,
    "server.enableStaticServing": False,
    "theme.base": "light",
    "theme.textColor": "#111111",
}


def _flatten(table: dict[str, object], prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and not prefix:
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def test_config_file_sets_each_option() -> None:
    values = _flatten(tomllib.loads(CONFIG.read_text(encoding="utf-8")))
    assert values == EXPECTED


def test_every_option_name_exists_in_streamlit() -> None:
    st_config.get_config_options()
    known = set(st_config._config_options_template)
    values = _flatten(tomllib.loads(CONFIG.read_text(encoding="utf-8")))
    unknown = sorted(set(values) - known)
    assert not unknown, f"not Streamlit options (typo?): {unknown}"


def test_show_error_details_value_is_one_streamlit_accepts() -> None:
    accepted = {o.value for o in st_config.ShowErrorDetailsConfigOptions}
    assert EXPECTED["client.showErrorDetails"] in accepted


@pytest.mark.timeout(120)
def test_streamlit_reads_the_file_as_written() -> None:
    """Streamlit itself parses the file from the repository root (no STREAMLIT_* overrides)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}
    code = (
        "import json, sys\n"
        "from streamlit import config\n"
        "config.get_config_options(force_reparse=True)\n"
        "keys = json.loads(sys.argv[1])\n"
        "print(json.dumps({k: config.get_option(k) for k in keys}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, json.dumps(list(EXPECTED))],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
        check=True,
    )
    parsed = json.loads(result.stdout.strip().splitlines()[-1])
    assert parsed == EXPECTED
