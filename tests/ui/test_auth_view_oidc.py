"""The OIDC sign-in view (ui.auth_view): an unusable ``[auth]`` section is explained on the sign-in
page, with no button that would fail at the first click; a complete one offers the button."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.factories import oidc_auth_section
from tests.ui.conftest import new_app_test
from ui.text import literal

NOT_SET_UP = "Sign-in is unavailable: single sign-on is not set up yet."


@pytest.fixture
def oidc_mode(app, set_env) -> None:  # type: ignore[no-untyped-def]
    set_env(AUTH_MODE="oidc")
    app(signed_in=False)  # migrates the database


def _visit(auth: dict[str, str] | None) -> AppTest:
    at = new_app_test()
    if auth is not None:
        at.secrets["auth"] = auth
    at.run()
    assert not at.exception, at.exception
    return at


def test_incomplete_section_is_explained_without_a_button(oidc_mode: None) -> None:
    auth = oidc_auth_section()
    del auth["client_secret"]
    at = _visit(auth)
    assert [t.value for t in at.title] == ["Advisor"]
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith(NOT_SET_UP)
    assert literal("the [auth] section lacks client_secret (see") in errors[0]  # shown as typed, not as Markdown
    assert auth["cookie_secret"] not in errors[0]
    assert not at.button and not at.text_input


def test_no_secrets_at_all_is_explained(oidc_mode: None) -> None:
    at = _visit(None)
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and literal("Streamlit's secrets have no [auth] section") in errors[0]
    assert not at.button


def test_complete_section_offers_the_sign_in_button(oidc_mode: None) -> None:
    at = _visit(oidc_auth_section())
    assert not at.error
    assert [b.key for b in at.button] == ["oidc_login"]
    assert at.button(key="oidc_login").label == "Sign in with your identity provider"


def test_local_mode_ignores_the_auth_section(app) -> None:  # type: ignore[no-untyped-def]
    app(signed_in=False)
    at = _visit(None)
    assert not at.error and not at.button  # no single sign-on button: the local sign-in view
    assert [e.proto.url for e in at.get("link_button")] == ["/signin"]
