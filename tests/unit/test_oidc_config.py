"""core.oidc_config: the ``[auth]`` section is checked at start, one clear line when it cannot work,
and the provider's server-side endpoints are read from its discovery document (for the guard)."""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pydantic import SecretStr

from core import oidc_config
from core.egress import Endpoint
from core.oidc_config import (
    OidcConfig,
    OidcConfigError,
    check_auth_section,
    discover_endpoints,
    oidc_config_problem,
    oidc_endpoints_at_start,
)
from core.settings import Settings
from tests.factories import oidc_auth_section
from tests.stubs.oidc_provider import OidcProvider

CLOSED_PORT_URL = "http://127.0.0.1:9/.well-known/openid-configuration"


def _settings(mode: str) -> Settings:
    return Settings(_env_file=None, auth_mode=mode, deletion_salt=SecretStr("x" * 16))  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _forget_discoveries() -> Iterator[None]:
    yield
    oidc_config._discovered.clear()


# ------------------------------------------------------------------------------------------------
# the check
# ------------------------------------------------------------------------------------------------
def test_a_complete_section_passes() -> None:
    section = oidc_auth_section()
    config = check_auth_section(section)
    expected = OidcConfig(redirect_uri=section["redirect_uri"], server_metadata_url=section["server_metadata_url"])
    assert config == expected
    assert config.metadata_endpoint == Endpoint("127.0.0.1", 9)
    assert oidc_config_problem(section) is None


LACKS = "the [auth] section lacks"
BAD_REDIRECT = "redirect_uri must be the app's absolute http(s) address"
BAD_METADATA = "server_metadata_url must be an absolute http(s) URL"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"client_secret": None, "server_metadata_url": None}, f"{LACKS} client_secret, server_metadata_url"),
        ({"client_id": "  "}, f"{LACKS} client_id"),
        ({"cookie_secret": 12345}, f"{LACKS} cookie_secret"),
        ({"redirect_uri": "http://localhost:8501/"}, f"{BAD_REDIRECT} ending in /oauth2callback"),
        ({"redirect_uri": "/oauth2callback"}, BAD_REDIRECT),
        ({"server_metadata_url": "id.example.com/.well-known/openid-configuration"}, BAD_METADATA),
        ({"server_metadata_url": "ftp://id.example.com/x"}, BAD_METADATA),
        ({"server_metadata_url": "http://id.example.com:99999/x"}, BAD_METADATA),
        ({"cookie_secret": "short-secret-1"}, "cookie_secret must be at least 32 random characters"),
    ],
)
def test_an_incomplete_or_wrong_section_gets_one_line_naming_the_problem(
    change: dict[str, object], expected: str
) -> None:
    section: dict[str, object] = dict(oidc_auth_section())
    for key, value in change.items():
        if value is None:
            del section[key]
        else:
            section[key] = value
    problem = oidc_config_problem(section)
    assert problem is not None and expected in problem
    assert problem.startswith("OIDC sign-in is not configured:") and "\n" not in problem
    for key in ("cookie_secret", "client_secret"):  # names keys, never repeats a secret
        value = section.get(key)
        if isinstance(value, str):
            assert value not in problem


@pytest.mark.parametrize("section", [None, {}])
def test_no_section_says_so(section: dict[str, object] | None) -> None:
    assert oidc_config_problem(section) == (
        "OIDC sign-in is not configured: Streamlit's secrets have no [auth] section "
        "(see 'Single sign-on' in README.md)."
    )


def test_authlib_missing_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(oidc_config, "_installed_authlib", lambda: None)
    assert "Authlib 1.3.2 or newer is not installed" in (oidc_config_problem(oidc_auth_section()) or "")
    monkeypatch.setattr(oidc_config, "_installed_authlib", lambda: (1, 3, 1))
    assert "Authlib 1.3.2 or newer is not installed" in (oidc_config_problem(oidc_auth_section()) or "")


def test_the_installed_authlib_is_new_enough() -> None:
    """requirements.txt installs Streamlit's auth extra: a fresh install can sign in."""
    installed = oidc_config._installed_authlib()
    assert installed is not None and installed >= oidc_config.MIN_AUTHLIB


# ------------------------------------------------------------------------------------------------
# discovery: the endpoints the app's server calls
# ------------------------------------------------------------------------------------------------
def test_discovery_at_a_real_provider(tmp_path: Path) -> None:
    with OidcProvider.start(tmp_path / "idp.log") as idp:
        config = check_auth_section(oidc_auth_section(metadata_url=idp.metadata_url))
        endpoints = discover_endpoints(config)
    port = int(idp.url.rsplit(":", 1)[1])
    assert endpoints == (Endpoint("127.0.0.1", port),)  # token, keys and userinfo on the same host


class _Discovery(BaseHTTPRequestHandler):
    document: bytes = b"{}"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.document)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def discovery_server() -> Iterator[tuple[str, type[_Discovery]]]:
    handler = type("Handler", (_Discovery,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/openid-configuration", handler
    finally:
        server.shutdown()
        server.server_close()


def test_endpoints_on_other_hosts_are_found(discovery_server: tuple[str, type[_Discovery]]) -> None:
    """Like Google's: keys and tokens on other hosts than the discovery document."""
    url, handler = discovery_server
    handler.document = json.dumps({
        "issuer": "https://accounts.example.test",
        "authorization_endpoint": "https://accounts.example.test/o/auth",  # the browser's, not ours
        "token_endpoint": "https://oauth2.example.test/token",
        "jwks_uri": "https://keys.example.test:8443/certs",
        "userinfo_endpoint": "javascript:alert(1)",
    }).encode()  # fmt: skip
    endpoints = discover_endpoints(check_auth_section(oidc_auth_section(metadata_url=url)))
    port = int(url.split(":")[2].split("/")[0])
    assert endpoints == (
        Endpoint("127.0.0.1", port),
        Endpoint("oauth2.example.test", 443),
        Endpoint("keys.example.test", 8443),
    )


def test_an_unreadable_discovery_document_is_an_error(discovery_server: tuple[str, type[_Discovery]]) -> None:
    url, handler = discovery_server
    handler.document = b"<html>not json</html>"
    with pytest.raises(OidcConfigError, match="could not be read"):
        discover_endpoints(check_auth_section(oidc_auth_section(metadata_url=url)))
    with pytest.raises(OidcConfigError, match=r"at 127\.0\.0\.1:9 could not be read"):
        discover_endpoints(check_auth_section(oidc_auth_section(metadata_url=CLOSED_PORT_URL)))


# ------------------------------------------------------------------------------------------------
# at start
# ------------------------------------------------------------------------------------------------
def test_local_mode_reads_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="advisor"):
        assert oidc_endpoints_at_start(_settings("local"), None) == ()
    assert not caplog.records


def test_a_broken_section_is_one_error_line_at_start(caplog: pytest.LogCaptureFixture) -> None:
    secret = secrets.token_hex(32)
    section = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": secret}
    with caplog.at_level(logging.INFO, logger="advisor"):
        assert oidc_endpoints_at_start(_settings("oidc"), section) == ()
    assert [(r.levelno, r.name) for r in caplog.records] == [(logging.ERROR, "advisor.oidc")]
    line = caplog.records[0].getMessage()
    assert "the [auth] section lacks client_id, client_secret, server_metadata_url" in line
    assert "Nobody can sign in until it is fixed." in line and secret not in line


def test_an_unreachable_provider_is_a_warning_and_its_own_host_stays_allowed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="advisor"):
        endpoints = oidc_endpoints_at_start(_settings("oidc"), oidc_auth_section(metadata_url=CLOSED_PORT_URL))
    assert endpoints == (Endpoint("127.0.0.1", 9),)
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "could not be read" in caplog.records[0].getMessage()


def test_a_reachable_provider_gives_its_endpoints(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with OidcProvider.start(tmp_path / "idp.log") as idp, caplog.at_level(logging.INFO, logger="advisor"):
        endpoints = oidc_endpoints_at_start(_settings("oidc"), oidc_auth_section(metadata_url=idp.metadata_url))
    assert endpoints == (Endpoint("127.0.0.1", int(idp.url.rsplit(":", 1)[1])),)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# ------------------------------------------------------------------------------------------------
# the documented examples
# ------------------------------------------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[2]


def test_readme_examples_are_complete_sections() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```toml\n(.*?)```", readme, re.S) if "[auth]" in b]
    assert len(blocks) >= 2  # a generic provider, and the laptop try-out
    for block in blocks:
        parsed = tomllib.loads(block)
        assert parsed["auth_mode"] == "oidc"  # above the table, so Advisor's settings read it
        assert set(parsed["auth"]) == set(oidc_config.REQUIRED_KEYS)
        assert oidc_config_problem(parsed["auth"]) is None


def test_secrets_example_uncommented_is_a_complete_section_with_settings_outside_it() -> None:
    example = (ROOT / ".streamlit" / "secrets.toml.example").read_text(encoding="utf-8")
    uncommented = "\n".join(
        line[2:] if re.match(r"# (\[auth\]|\w+ = )", line) else line for line in example.splitlines()
    )
    parsed = tomllib.loads(uncommented)
    assert parsed["auth_mode"] == "local" and "database_url" in parsed  # settings stay top-level
    assert set(parsed["auth"]) == set(oidc_config.REQUIRED_KEYS)
