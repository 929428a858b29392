"""Every form field of every page, filled with a too-long, an empty and a wrong-kind value: what the
person reads is written for people and names the limit, never pydantic's own phrasing (C6).

Each field is listed in ``FIELDS`` with its page, how to reach and submit it, and for each bad value
the words its message must contain (the limit: "60", "1 to 120", "at least 10", ...). A value is of
the wrong kind when it cannot be what the field asks for: text with a control or invisible
character in a label, an address that is not an email, a password that breaks the rules, a second
typing that differs, too many decimals in an amount. A field whose widget itself never holds a bad
value (a whole-number box turns 1.5 into 1) has no such case. ``test_every_input_of_every_page_is_listed``
fails when a page gains an input that is not listed here. The sign-in and create-account forms are
plain HTML (``core.auth_pages``): ``tests/db/test_auth_routes.py::test_every_sign_in_field_gets_messages_for_people``
fills their fields the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import col
from streamlit.testing.v1 import AppTest

from core import accounts, profiles
from core.db import system_session
from core.settings import get_settings
from models import User
from models.schemas import ProfileIn, SignUpIn
from tests.factories import make_user, random_email
from tests.ui.conftest import AppFactory, create_signed_in_user, page_file, sign_in_directly
from ui.frame import SignedInUser

RAW_PHRASES = ("should have", "validation", "String should", "Value should", "Input should", "Value error")
GOOD_PASSWORD = "Forms-canary-pw-61"
LONG_EMAIL = "x" * 300 + "@example.com"
Fill = Callable[[AppTest, Any], AppTest]


@dataclass(frozen=True)
class Field:
    """One input: its page (None: the sign-in view), widget key (a pattern), and how a value reaches
    the page (``fill`` sets it, the other fields of its form to good values, and submits)."""

    page: str | None
    key: str
    fill: Fill
    cases: dict[str, tuple[Any, str | None]]  # too_long / empty / wrong -> (value, words the message has)
    admin: bool = False
    local_password: bool = False  # the signed-in user has a password (the account page)

    @property
    def id(self) -> str:
        return f"{self.page or 'sign-in'}:{self.key}"


def _text(at: AppTest, pattern: str) -> Any:
    matches = [w for w in at.text_input if re.fullmatch(pattern, w.key or w.label)]
    assert len(matches) == 1, (pattern, [w.key for w in at.text_input])
    return matches[0]


def _click(at: AppTest, pattern: str) -> AppTest:
    matches = [b for b in at.button if b.key and re.fullmatch(pattern, b.key)]
    assert len(matches) == 1, (pattern, [b.key for b in at.button])
    return matches[0].click().run()


def _form(submit: str, target: str, others: dict[str, str]) -> Fill:
    """A ``st.form``: the target field gets the value, the others good values; then submit."""

    def fill(at: AppTest, value: Any) -> AppTest:
        for key, good in others.items():
            _text(at, key).set_value(good)
        _text(at, target).set_value(value)
        return _click(at, submit)

    return fill


def _passwords(submit: str, target: str, first: str, second: str, others: dict[str, str]) -> Fill:
    """A new password typed twice: a bad new password is typed the same way twice (as a person
    would); a bad second typing goes with a good first one."""

    def fill(at: AppTest, value: Any) -> AppTest:
        for key, good in others.items():
            _text(at, key).set_value(good)
        _text(at, first).set_value(value if target in (first, "both") else GOOD_PASSWORD)
        _text(at, second).set_value(value)
        return _click(at, submit)

    return fill


def _role_other(select: str, target: str, submit: str | None) -> Fill:
    def fill(at: AppTest, value: Any) -> AppTest:
        at.selectbox(key=select).set_value("Other").run()
        _text(at, target).set_value(value)
        return _click(at, submit) if submit else at.run()

    return fill


def _stack(target: str, role: str | None, submit: str | None) -> Fill:
    def fill(at: AppTest, value: Any) -> AppTest:
        if role is not None:
            at.selectbox(key=role).set_value("CTO")
        at.multiselect(key=target).set_value(value)
        return _click(at, submit) if submit else at.run()

    return fill


def _live(target: str) -> Fill:
    """A field checked as it is typed (no submit button)."""

    def fill(at: AppTest, value: Any) -> AppTest:
        _text(at, target).set_value(value)
        return at.run()

    return fill


def _rename(at: AppTest, value: Any) -> AppTest:
    _text(at, r"rename_.+").set_value(value)
    return _click(at, r"rename_save_.+")


def _chat(at: AppTest, value: Any) -> AppTest:
    at.chat_input[0].set_value(value)
    return at.run()


def _quota(which: str) -> Fill:
    def fill(at: AppTest, value: Any) -> AppTest:
        at.selectbox(key="quota_user").set_value(at.quota_target).run()  # type: ignore[attr-defined]
        box = next(n for n in at.number_input if n.key and n.key.startswith(f"quota_{which}_"))
        box.set_value(value)
        return _click(at, "FormSubmitter:quota_form-Save overrides")

    return fill


def _password_min() -> str:
    return f"at least {get_settings().min_password_length} characters"


CHANGE = "FormSubmitter:change_password_form-Change password"
SET = "FormSubmitter:new_password_form-Set password"
SET_PASSWORD = "set-a-new-password"  # not a page file: the gate's only view while a reset is pending
EMAIL_LIMIT = "at most 254 characters"
CONFIRM_EMAIL = r"To confirm, type your email address .*"  # no key: the label (a widget key there
# would outlive the session state cleared by the deletion's sign-out)
FIELDS: list[Field] = [
    # chat
    Field("pages/chat.py", r"rename_.+", _rename,
          {"too_long": ("t" * 200, "at most 120 characters"), "empty": ("", "1 to 120 characters"),
           "wrong": ("title\x07", "U+0007")}),
    Field("pages/chat.py", "chat_input", _chat,
          {"too_long": ("m" * 100_001, "at most"), "wrong": ("bell\x07", "U+0007")}),
    # profile & vibe
    Field("pages/vibe.py", "profile_role_other", _role_other("profile_role", "profile_role_other", "save_profile"),
          {"too_long": ("r" * 80, "at most 60 characters"), "empty": ("", "at most 60 characters"),
           "wrong": ("CTO\u202e", "U+202E")}),
    Field("pages/vibe.py", "profile_stack", _stack("profile_stack", "profile_role", "save_profile"),
          {"too_long": ([f"Tech{i}" for i in range(21)], "at most 20 entries"),
           "wrong": (["x" * 41], "at most 40 characters")}),
    Field("pages/vibe.py", "vibe_name", _live("vibe_name"),
          {"too_long": ("v" * 80, "at most 60 characters"), "empty": ("", "1 to 60 characters"),
           "wrong": ("calm\u202e", "U+202E")}),
    # prompt preview (the what-if form, checked as it changes)
    Field("pages/prompt_preview.py", "pp_wi_role_other", _role_other("pp_wi_role", "pp_wi_role_other", None),
          {"too_long": ("r" * 80, "at most 60 characters"), "empty": ("", "at most 60 characters"),
           "wrong": ("CTO\x00", "U+0000")}),
    Field("pages/prompt_preview.py", "pp_wi_stack", _stack("pp_wi_stack", None, None),
          {"too_long": ([f"Tech{i}" for i in range(21)], "at most 20 entries"),
           "wrong": (["x" * 41], "at most 40 characters")}),
    # privacy (the deletion's confirmation: never a valid address of this account here)
    Field("pages/privacy.py", CONFIRM_EMAIL,
          _form("FormSubmitter:delete_account-Delete my account permanently", CONFIRM_EMAIL, {}),
          {"too_long": (LONG_EMAIL, EMAIL_LIMIT), "empty": ("", EMAIL_LIMIT), "wrong": ("not-an-email", EMAIL_LIMIT)}),
    # account
    Field("pages/account.py", "current_password",
          _form(CHANGE, "current_password", {"new_password": GOOD_PASSWORD, "confirm_password": GOOD_PASSWORD}),
          {"too_long": ("p" * 300, "at most 256 characters"), "empty": ("", "1 to 256 characters")},
          local_password=True),
    Field("pages/account.py", "new_password", _passwords(CHANGE, "both", "new_password", "confirm_password",
                                                         {"current_password": GOOD_PASSWORD}),
          {"too_long": ("Aa1" * 100, "at most 256 characters"), "empty": ("", "<password-min>"),
           "wrong": ("onlylowercaseletters", "at least two kinds")}, local_password=True),
    Field("pages/account.py", "confirm_password", _passwords(CHANGE, "confirm_password", "new_password",
                                                             "confirm_password", {"current_password": GOOD_PASSWORD}),
          {"too_long": ("Aa1" * 100, "at most 256 characters"), "empty": ("", "same password twice"),
           "wrong": ("Other-pw-123", "same password twice")}, local_password=True),
    # the one view of an account whose admin forced a password reset
    Field(SET_PASSWORD, "new_password", _passwords(SET, "both", "new_password", "confirm_password", {}),
          {"too_long": ("Aa1" * 100, "at most 256 characters"), "empty": ("", "<password-min>"),
           "wrong": ("onlylowercaseletters", "at least two kinds")}),
    Field(SET_PASSWORD, "confirm_password", _passwords(SET, "confirm_password", "new_password", "confirm_password", {}),
          {"too_long": ("Aa1" * 100, "at most 256 characters"), "empty": ("", "same password twice"),
           "wrong": ("Other-pw-123", "same password twice")}),
    # admin
    Field("pages/admin.py", "grant_email", _form("FormSubmitter:grant_admin_form-Grant admin", "grant_email", {}),
          {"too_long": (LONG_EMAIL, EMAIL_LIMIT), "empty": ("", EMAIL_LIMIT),
           "wrong": ("bad\u200e@example.com", "U+200E")}, admin=True),
    Field("pages/admin.py", r"quota_tokens_.+", _quota("tokens"),
          {"too_long": (10**11, "from 0 to 10,000,000,000")}, admin=True),
    Field("pages/admin.py", r"quota_cost_.+", _quota("cost"),
          {"too_long": (2_000_000.0, "from 0 to 1,000,000"), "wrong": (1.23456, "at most 4 decimals")}, admin=True),
]
# Inputs that take no value a person could get wrong: a pager (Streamlit keeps it at 1 or more;
# a page past the end shows "No runs on this page.").
NOT_FORM_FIELDS = {"pages/analytics.py": {"an_runs_page"}}
PAGES = ["pages/chat.py", "pages/vibe.py", "pages/prompt_preview.py", "pages/analytics.py", "pages/privacy.py",
         "pages/account.py", "pages/status.py", "pages/admin.py"]


def _messages(at: AppTest) -> list[str]:
    return [str(e.value) for e in [*at.error, *at.warning, *at.exception]]


def _resetting(app: AppFactory) -> AppTest:
    """Signed in as an account whose admin forced a password reset."""
    at: AppTest = app(signed_in=False)
    created = accounts.sign_up(SignUpIn(email=random_email(), password=GOOD_PASSWORD))
    with system_session() as s:
        s.execute(update(User).where(col(User.id) == created.id).values(password_reset_required=True))
    sign_in_directly(at, SignedInUser(id=created.id, email=created.email, is_admin=False, password_reset_required=True))
    return at.run()


def _open(app: AppFactory, spec: Field) -> AppTest:
    if spec.page is None:
        signed_out: AppTest = app(signed_in=False)
        return signed_out
    if spec.page == SET_PASSWORD:
        return _resetting(app)
    user = None
    if spec.local_password:
        created = accounts.sign_up(SignUpIn(email=random_email(), password=GOOD_PASSWORD))
        user = SignedInUser(id=created.id, email=created.email, is_admin=created.is_admin)
    if spec.page == "pages/prompt_preview.py":  # the page needs a saved profile
        user = user or create_signed_in_user()
        profiles.save_profile(user_id=user.id, data=ProfileIn(role="CTO"))
    at: AppTest = app(spec.page, user=user, admin=spec.admin)
    if spec.admin:
        email = random_email()
        make_user(email=email)
        at.run()
        at.quota_target = email  # type: ignore[attr-defined]
    return at


@pytest.mark.parametrize("spec", FIELDS, ids=[f.id for f in FIELDS])
def test_bad_values_get_messages_for_people_that_name_the_limit(app: AppFactory, spec: Field) -> None:
    at = _open(app, spec)
    assert not at.exception, at.exception
    for case, (value, words) in spec.cases.items():
        at = spec.fill(at, value)
        shown = _messages(at)
        assert not at.exception, (spec.id, case, at.exception)
        expected = _password_min() if words == "<password-min>" else words
        assert shown, (spec.id, case, "no message shown")
        for message in shown:
            assert not any(p.lower() in message.lower() for p in RAW_PHRASES), (spec.id, case, message)
        assert expected is not None and any(expected in m for m in shown), (spec.id, case, expected, shown)


def _inputs(at: AppTest) -> set[str]:
    keys = {w.key or w.label for kind in ("text_input", "text_area", "number_input") for w in getattr(at, kind)}
    keys |= {m.key or m.label for m in at.multiselect if m.proto.accept_new_options}
    if at.chat_input:
        keys.add("chat_input")
    return keys


def test_every_input_of_every_page_is_listed(app: AppFactory) -> None:
    """Each page (as an admin with a password, the Other role chosen where a page offers it), the
    sign-in view and the view of a pending reset: every free-form input is in ``FIELDS`` (or
    ``NOT_FORM_FIELDS``)."""
    listed: dict[str | None, list[str]] = {}
    for spec in FIELDS:
        listed.setdefault(spec.page, []).append(spec.key)
    views: list[tuple[str | None, AppTest]] = [(None, app(signed_in=False))]
    created = accounts.sign_up(SignUpIn(email=random_email(), password=GOOD_PASSWORD))
    with system_session() as s:
        s.execute(update(User).where(col(User.id) == created.id).values(is_admin=True))
    admin = SignedInUser(id=created.id, email=created.email, is_admin=True)
    profiles.save_profile(user_id=admin.id, data=ProfileIn(role="CTO"))
    other = app(user=admin)
    for path in PAGES:
        other.switch_page(page_file(path)).run()
        for select in ("profile_role", "pp_wi_role"):
            if any(s.key == select for s in other.selectbox):
                other.selectbox(key=select).set_value("Other").run()
        if path == "pages/admin.py":
            other.selectbox(key="quota_user").set_value(created.email).run()
        views.append((path, other))
        found = _inputs(other)
        unlisted = {k for k in found if not any(re.fullmatch(p, k) for p in listed.get(path, []))}
        assert unlisted <= NOT_FORM_FIELDS.get(path, set()), (path, unlisted)
    signed_out = views[0][1]
    # the signed-out view has no Streamlit input: sign-in and create-account are plain HTML forms,
    # whose every field is checked the same way in tests/db/test_auth_routes.py
    assert _inputs(signed_out) == set() and None not in listed
    assert _inputs(_resetting(app)) == set(listed[SET_PASSWORD])
