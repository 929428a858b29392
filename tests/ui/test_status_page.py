"""The status page (pages/status.py over core/status.py): what is up, what is configured, no secrets."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

import core
from core.providers.base import ChatMessage
from core.providers.router import AllProvidersFailed, build_router
from core.settings import Settings, get_settings
from core.status import collect_status, database_status, mask_secret, mask_url, redis_status
from tests.conftest import REDIS_URL

PAGE = "pages/status.py"
REFUSED = "http://127.0.0.2:9"  # loopback, nothing listens: connection refused at once


def rendered(at: AppTest) -> bytes:
    """Every element and block of the last run, serialized as it is sent to the browser."""
    return b"".join(
        node.proto.SerializeToString() for node in at._tree if getattr(node, "proto", None) is not None
    )


def table(at: AppTest, first_label: str) -> dict[str, Any]:
    """The two-column table whose first row is labelled ``first_label``, as {label: value}."""
    for t in at.dataframe:
        df = t.value
        labels = list(df.iloc[:, 0])
        if labels and labels[0] == first_label:
            return dict(zip(labels, df.iloc[:, 1], strict=True))
    raise AssertionError(f"no table starting with {first_label!r}")


def provider_table(at: AppTest) -> list[dict[str, Any]]:
    for t in at.dataframe:
        df = t.value
        if "provider" in df.columns:
            return df.to_dict("records")  # type: ignore[no-any-return]
    raise AssertionError("no provider table")


def fail_once(settings: Settings) -> None:
    """One real failed request through the router (connection refused): the breaker records it."""
    router = build_router(settings)
    with pytest.raises(AllProvidersFailed):
        list(router.stream([ChatMessage("user", "hi")], system="s", request_id="status-test"))


def test_status_page_reports_everything_and_masks_the_key(app, set_env) -> None:
    canary = f"sk-proj-STATUSCANARY{secrets.token_hex(12)}"
    set_env(
        PROVIDERS="openai,anthropic",
        OPENAI_API_KEY=canary,
        OPENAI_BASE_URL=f"{REFUSED}/v1",
        ANTHROPIC_BASE_URL=REFUSED,
        BREAKER_FAILURES="1",
        BREAKER_COOLDOWN_S="600",
        PROVIDER_CONNECT_TIMEOUT_S="2",
        REDIS_URL=REDIS_URL,
    )
    fail_once(get_settings())

    at = app(PAGE, admin=True)  # connection details are for administrators
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Status"]
    assert not at.error

    db = table(at, "backend")
    assert db["backend"] == "sqlite"
    assert db["reachable"] == "yes" and db["migrated"] == "yes"
    assert db["current revision"] == db["head revision"] != "none"

    openai, anthropic = provider_table(at)
    assert openai["provider"] == "openai" and anthropic["provider"] == "anthropic"
    assert openai["API key"] == "••••" + canary[-4:]
    assert anthropic["API key"] == "not set"
    assert openai["endpoint"] == f"{REFUSED}/v1"
    for row in (openai, anthropic):  # both failed once with breaker_failures=1: open
        assert row["circuit breaker"] == "open"
        assert row["failures in a row"] == 1
        assert row["last error"] == "connection"
        assert row["last error at (UTC)"] != "never"

    redis = table(at, "URL")
    assert redis["URL"] == REDIS_URL and str(redis["reachable"]).startswith("yes")

    trust = table(at, "read-only guard")
    assert trust["read-only guard"] == "off"  # the test process never installs the guard
    assert trust["Sentry"] == "off"
    assert trust["version"] == core.__version__
    assert not any("Demo mode" in i.value for i in at.info)
    assert any("ADVISOR_DELETION_SALT` is at its published default" in w.value for w in at.warning)

    out = rendered(at)
    assert canary[-4:].encode() in out  # the check below looks at the real output
    assert canary.encode() not in out and canary[:-4].encode() not in out


def test_status_page_announces_demo_mode_and_hides_redis_password(app, set_env) -> None:
    password = f"redispw{secrets.token_hex(8)}"
    set_env(REDIS_URL=f"redis://:{password}@127.0.0.2:9/0",  # configured but unreachable
            DELETION_SALT=f"deployment-secret-{secrets.token_hex(16)}")
    at = app(PAGE, admin=True)
    assert not at.exception, at.exception
    assert any("Demo mode" in i.value for i in at.info)
    assert not any("DELETION_SALT" in w.value for w in at.warning)  # set below: no warning
    (demo,) = provider_table(at)
    assert demo["provider"] == "demo" and demo["circuit breaker"] == "closed" and demo["last error"] == "none"
    redis = table(at, "URL")
    assert redis["URL"] == "redis://:••••@127.0.0.2:9/0"
    assert str(redis["reachable"]).startswith("NO")
    assert password.encode() not in rendered(at)


def test_members_see_what_is_up_but_no_connection_details(app, set_env) -> None:
    """A member (not an administrator) sees each part's state -- database reachable, provider
    breakers and last errors, Redis reachable -- and none of the addresses, endpoints, masked keys
    or revisions the administrators see."""
    canary = f"sk-proj-MEMBERCANARY{secrets.token_hex(12)}"
    set_env(PROVIDERS="openai", OPENAI_API_KEY=canary, OPENAI_BASE_URL=f"{REFUSED}/v1", BREAKER_FAILURES="1",
            BREAKER_COOLDOWN_S="600", PROVIDER_CONNECT_TIMEOUT_S="2", REDIS_URL=REDIS_URL)
    fail_once(get_settings())
    at = app(PAGE)  # a member
    assert not at.exception, at.exception
    assert table(at, "backend") == {"backend": "sqlite", "reachable": "yes", "migrated": "yes"}
    (openai,) = provider_table(at)
    assert set(openai) == {"provider", "model", "circuit breaker", "failures in a row", "last error",
                           "last error at (UTC)"}
    assert openai["circuit breaker"] == "open" and openai["last error"] == "connection"
    assert table(at, "reachable") == {"reachable": "yes"}
    assert any("shown to administrators" in c.value for c in at.caption)
    assert not at.warning  # the default-secret warning is for administrators
    out = rendered(at)
    database_url = get_settings().database_url
    for detail in (canary[-4:], "127.0.0.2:9", REDIS_URL, database_url, "••••"):
        assert detail.encode() not in out, detail


def test_database_status_reports_unmigrated_and_unreachable(tmp_path) -> None:
    fresh = Settings(_env_file=None, database_url=f"sqlite:///{tmp_path / 'empty.db'}")
    status = database_status(fresh)
    assert status.reachable and status.current_revision is None and status.head_revision
    assert not status.migrated

    gone = Settings(_env_file=None, database_url="postgresql+psycopg://app:s3cret-pw@127.0.0.2:9/advisor")
    status = database_status(gone)
    assert not status.reachable and not status.migrated and status.error
    assert status.url == "postgresql+psycopg://app:••••@127.0.0.2:9/advisor"


def test_redis_status_is_none_when_not_configured() -> None:
    assert redis_status(Settings(_env_file=None)) is None


def test_collect_status_names_a_misconfigured_provider() -> None:
    report = collect_status(Settings(_env_file=None, providers="openai"))
    assert report.providers == []
    assert report.providers_error and "ADVISOR_OPENAI_API_KEY" in report.providers_error


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("sk-ant-api03-abcdefghijklmnop", "••••mnop"),
        ("short123", "••••"),
        ("", None),
        (None, None),
    ],
)
def test_mask_secret_keeps_only_the_last_four(value: str | None, expected: str | None) -> None:
    assert mask_secret(value) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql+psycopg://app:pw%40x@db:5432/advisor", "postgresql+psycopg://app:••••@db:5432/advisor"),
        ("redis://:secretpw@127.0.0.1:6379/0", "redis://:••••@127.0.0.1:6379/0"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("https://user:pw@[::1]:8443/v1", "https://user:••••@[::1]:8443/v1"),
        ("sqlite:///data/advisor.db", "sqlite:///data/advisor.db"),
        (None, None),
        # drivers accept '/', '#', '?' in a password; urlsplit would find no password in these
        ("postgresql+psycopg://app:head/TAILSECRET@db:9/advisor", "postgresql+psycopg://app:••••@db:9/advisor"),
        ("postgresql+psycopg://app:head#TAILSECRET@db:9/advisor", "postgresql+psycopg://app:••••@db:9/advisor"),
        ("postgresql+psycopg://app:head?TAILSECRET@db:9/advisor", "postgresql+psycopg://app:••••@db:9/advisor"),
        ("postgresql+psycopg://app@db:9/advisor?password=TAILSECRET&sslmode=require",
         "postgresql+psycopg://app@db:9/advisor?password=••••&sslmode=require"),
        ("redis://db:6379/0?password=TAILSECRET", "redis://db:6379/0?password=••••"),
        ("https://proxy/v1?api_key=TAILSECRET", "https://proxy/v1?api_key=••••"),
        ("not a url with user:TAILSECRET@host", "••••"),
    ],
)
def test_mask_url_hides_the_password(url: str | None, expected: str | None) -> None:
    assert mask_url(url) == expected
    assert "TAILSECRET" not in (mask_url(url) or "")
