"""core.origins: which websocket origins are the app's own, decided without a lookup."""

from __future__ import annotations

import pytest

from core.origins import hostname_of, websocket_origin_allowed

HOST = "advisor.internal:8501"


@pytest.mark.parametrize(
    "origin",
    [
        None,  # a non-browser client sends no Origin
        "http://advisor.internal:8501",  # same origin as the request's Host
        "http://localhost:8501",
        "http://LOCALHOST:9999",
        "http://127.0.0.1:8501",
        "http://0.0.0.0:8501",
        "https://advisor.example.com",  # the configured public address
        "https://ADVISOR.example.com:443",
    ],
)
def test_the_apps_own_origins_are_allowed(origin: str | None) -> None:
    assert websocket_origin_allowed(origin, HOST, "advisor.example.com")


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example",
        "null",  # a sandboxed frame or a file
        "",
        "http://advisor.internal:8502",  # another port is another origin
        "http://127.0.0.2:8501",
        "http://[::1]:8501",  # Streamlit would look its addresses up for this one
        "http://localhost.evil.example",
        "http://advisor.example.com.evil.example",
        "http://[::1",  # unparseable
    ],
)
def test_other_origins_are_refused(origin: str) -> None:
    assert not websocket_origin_allowed(origin, HOST, "advisor.example.com")


def test_the_public_address_may_be_a_url_and_an_empty_one_matches_nothing() -> None:
    assert websocket_origin_allowed("https://advisor.example.com", None, "https://advisor.example.com:8443/app")
    assert not websocket_origin_allowed("http://evil.example", None, "")
    assert not websocket_origin_allowed("http://evil.example", None, "http://")


def test_hostname_of_reads_urls_with_or_without_a_scheme() -> None:
    assert hostname_of("Example.COM:80") == "example.com"
    assert hostname_of("https://example.com/x") == "example.com"
    assert hostname_of("null") == "null"
    assert hostname_of("http://[::1") is None
