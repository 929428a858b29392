from __future__ import annotations

import subprocess
import sys

import pytest

from core.settings import ROOT, SettingsError, get_settings


def test_defaults_use_sqlite_and_demo(monkeypatch):
    monkeypatch.delenv("ADVISOR_DATABASE_URL")
    s = get_settings()
    assert s.database_url == "sqlite:///data/advisor.db"
    assert s.provider_order == ["demo"]
    assert s.guard == "off"  # the test fixture sets it; the app default is enforce
    monkeypatch.delenv("ADVISOR_GUARD")
    from core.settings import Settings

    assert Settings().guard == "enforce"


def test_configured_providers_are_the_default_order(set_env):
    set_env(ANTHROPIC_API_KEY="k1", OPENAI_BASE_URL="http://127.0.0.1:1/v1")
    assert get_settings().provider_order == ["openai", "anthropic"]
    set_env(PROVIDERS="anthropic, openai")
    assert get_settings().provider_order == ["anthropic", "openai"]


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [("PROVIDERS", "openai,gemini", "ADVISOR_PROVIDERS"), ("GUARD", "maybe", "ADVISOR_GUARD"),
     ("DATABASE_URL", "mysql://x", "ADVISOR_DATABASE_URL"), ("CHAT_TURNS_PER_MINUTE", "0", "ADVISOR_CHAT")],
)
def test_bad_settings_fail_with_one_clear_line(set_env, key, value, needle):
    set_env(**{key: value})
    with pytest.raises(SettingsError) as info:
        get_settings()
    msg = str(info.value)
    assert "\n" not in msg and needle in msg


def test_bad_settings_at_start_print_one_line(tmp_path):
    env = {"ADVISOR_GUARD": "sometimes", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "core.db", "migrate"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "ADVISOR_GUARD" in lines[0]
