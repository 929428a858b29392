"""The local sign-in routes and the page-load gate over HTTP (core.auth_routes; C5, C21, C23).

A Starlette app with the routes and ``SessionGate`` (as ``streamlit_app.py`` hands them to
``st.App``) in front of two stand-in pages, driven by Starlette's test client, on both databases.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from html import unescape
from typing import Any

import pytest
from sqlmodel import select
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from core import accounts, sessions
from core.auth_routes import CSRF_COOKIE, SessionGate, auth_routes, safe_next
from core.db import system_session
from core.rate_limits import reset_limiter_cache
from models import User, UserSession
from models.schemas import SignUpIn
from tests.factories import random_email

PASSWORD = "Route-canary-pw-42"
PAGE = {"accept": "text/html", "sec-fetch-dest": "document", "sec-fetch-mode": "navigate"}
SAME_ORIGIN = {"sec-fetch-site": "same-origin"}


async def app_page(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"app page {request.url.path}")


def make_client(base_url: str = "http://testserver", peer: str = "testclient") -> TestClient:
    app = Starlette(
        routes=[*auth_routes(), Route("/", app_page), Route("/analytics", app_page),
                Route("/_stcore/health", app_page)],
        middleware=[Middleware(SessionGate)],
    )
    return TestClient(app, base_url=base_url, follow_redirects=False, client=(peer, 50000))


@pytest.fixture
def client(any_db_url: str) -> Iterator[TestClient]:
    reset_limiter_cache()
    with make_client() as c:
        yield c
    reset_limiter_cache()
    sessions.clear_validation_cache()


def _set_cookie_headers(response: Any, name: str) -> list[str]:
    headers = response.headers.get_list("set-cookie")
    return [h for h in headers if h.startswith(f"{name}=")]


def _csrf(client: TestClient, path: str = "/signin") -> str:
    response = client.get(path, headers=PAGE)
    if response.status_code == 303:  # signed in already: the form token is the browser's cookie
        return str(client.cookies[CSRF_COOKIE])
    assert response.status_code == 200
    found = re.search(r'name="csrf" value="([^"]+)"', response.text)
    assert found is not None
    return unescape(found.group(1))


def _sign_up(client: TestClient, email: str, password: str = PASSWORD, *, next_path: str = "/",
             confirm: str | None = None) -> Any:
    token = _csrf(client, "/signup")
    return client.post("/signup", headers=SAME_ORIGIN, data={
        "csrf": token, "next": next_path, "email": email, "password": password,
        "confirm": password if confirm is None else confirm})


def _sign_in(client: TestClient, email: str, password: str = PASSWORD, *, next_path: str = "/") -> Any:
    token = _csrf(client)
    return client.post("/signin", headers=SAME_ORIGIN, data={
        "csrf": token, "next": next_path, "email": email, "password": password})


def _alert(response: Any) -> str:
    found = re.search(r'role="alert">(.*?)</div>', response.text, re.S)
    assert found is not None, response.text
    return unescape(re.sub(r"<[^>]+>", " ", found.group(1))).strip()


# ------------------------------------------------------------------------------------------------
# the forms
# ------------------------------------------------------------------------------------------------
def test_the_sign_in_page_is_a_plain_accessible_form_and_sets_the_form_token(client: TestClient) -> None:
    response = client.get("/signin?next=/analytics", headers=PAGE)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "<script" not in page.lower()  # nothing for the Content-Security-Policy to refuse
    for field_id, label in (("signin-email", "Email"), ("signin-password", "Password")):
        assert f'<label for="{field_id}">{label}</label>' in page and f'id="{field_id}"' in page
    assert 'action="/signin"' in page and 'name="next" value="/analytics"' in page
    assert 'href="/signup?next=%2Fanalytics"' in page
    (cookie,) = _set_cookie_headers(response, CSRF_COOKIE)
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie


def test_sign_up_starts_a_session_in_an_httponly_cookie_and_lands_on_next(client: TestClient) -> None:
    email = random_email()
    response = _sign_up(client, email, next_path="/analytics?range=7")
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/analytics?range=7"
    (cookie,) = _set_cookie_headers(response, sessions.SESSION_COOKIE)
    token = cookie.split(";")[0].split("=", 1)[1]
    assert len(token) >= 43
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite", "path", "max-age"} <= attributes and "secure" not in attributes
    assert "SameSite=lax" in cookie and "Max-Age=1209600" in cookie  # 14 days
    with system_session() as s:
        user = s.exec(select(User).where(User.email == email)).one()
        rows = s.exec(select(UserSession).where(UserSession.user_id == user.id)).all()
    assert [r.token_hash for r in rows] == [sessions.token_hash(token)]
    assert user.password_hash is not None and user.password_hash.startswith("$argon2id$")
    # the session is good for the app's pages
    assert client.get("/analytics", headers=PAGE).text == "app page /analytics"


def test_over_https_the_cookies_are_secure(any_db_url: str) -> None:
    with make_client("https://testserver") as c:
        (csrf_cookie,) = _set_cookie_headers(c.get("/signin", headers=PAGE), CSRF_COOKIE)
        response = _sign_up(c, random_email())
        (session_cookie,) = _set_cookie_headers(response, sessions.SESSION_COOKIE)
    assert "Secure" in csrf_cookie and "Secure" in session_cookie and "HttpOnly" in session_cookie


def test_behind_a_trusted_tls_proxy_the_cookies_are_secure(any_db_url: str, set_env) -> None:
    """A proxy of ours terminates TLS: its ``X-Forwarded-Proto: https`` counts, and only then."""
    https = {"x-forwarded-proto": "https"}
    with make_client() as c:  # no trusted proxy: the header is the client's own, not believed
        assert "Secure" not in _set_cookie_headers(c.get("/signin", headers={**PAGE, **https}), CSRF_COOKIE)[0]
    set_env(TRUSTED_PROXY_HOPS="1")
    with make_client() as c:
        assert "Secure" in _set_cookie_headers(c.get("/signin", headers={**PAGE, **https}), CSRF_COOKIE)[0]


def test_a_page_load_renews_the_cookies_lifetime(client: TestClient) -> None:
    response = _sign_up(client, random_email())
    token = _set_cookie_headers(response, sessions.SESSION_COOKIE)[0].split(";")[0].split("=", 1)[1]
    page = client.get("/analytics", headers=PAGE)
    assert page.status_code == 200
    (renewed,) = _set_cookie_headers(page, sessions.SESSION_COOKIE)
    assert renewed.startswith(f"{sessions.SESSION_COOKIE}={token};")
    assert "Max-Age=1209600" in renewed and "HttpOnly" in renewed and "SameSite=lax" in renewed
    # not on other requests (assets, Streamlit's own API)
    assert not _set_cookie_headers(client.get("/_stcore/health", headers={"sec-fetch-dest": "empty"}),
                                   sessions.SESSION_COOKIE)


def test_sign_in_with_the_right_password_only(client: TestClient) -> None:
    email = random_email()
    accounts.sign_up(SignUpIn(email=email, password=PASSWORD))
    wrong = _sign_in(client, email, PASSWORD + "x")
    unknown = _sign_in(client, random_email(), PASSWORD)
    assert wrong.status_code == unknown.status_code == 400
    assert _alert(wrong) == _alert(unknown) == accounts.GENERIC_SIGNIN_ERROR
    empty = _sign_in(client, "", "")
    assert empty.status_code == 400 and "Password: Enter 1 to 256 characters." in _alert(empty)
    assert not _set_cookie_headers(wrong, sessions.SESSION_COOKIE)
    assert f'value="{email}"' in wrong.text  # the email is kept, the password is not
    assert PASSWORD not in wrong.text
    ok = _sign_in(client, email, next_path="/analytics")
    assert ok.status_code == 303 and ok.headers["location"] == "/analytics"
    assert _set_cookie_headers(ok, sessions.SESSION_COOKIE)


def test_sign_up_errors_are_shown_next_to_their_fields(client: TestClient) -> None:
    weak = _sign_up(client, random_email(), "onlylowercaseletters")
    assert weak.status_code == 400 and "Mix at least two kinds" in _alert(weak)
    assert re.search(r'id="signup-password"[^>]*aria-invalid="true"', weak.text)
    assert 'id="signup-password-error"' in weak.text
    differ = _sign_up(client, random_email(), PASSWORD, confirm=PASSWORD + "!")
    assert differ.status_code == 400 and _alert(differ) == "The two passwords differ: type the same password twice."
    assert 'id="signup-confirm-error"' in differ.text
    bad_email = _sign_up(client, "not-an-email")
    assert bad_email.status_code == 400 and 'id="signup-email-error"' in bad_email.text
    assert _alert(bad_email) == "Enter an email address like name@example.com (at most 254 characters)."
    too_long = _sign_up(client, random_email(), "Ab1" * 3_400)
    assert too_long.status_code == 400 and "Password: Use at most 256 characters." in _alert(too_long)
    with system_session() as s:
        assert s.exec(select(User)).all() == []
    email = random_email()
    accounts.sign_up(SignUpIn(email=email, password=PASSWORD))
    taken = _sign_up(client, email)
    assert taken.status_code == 400 and _alert(taken) == accounts.GENERIC_SIGNUP_ERROR


def test_lockout_is_shown_with_its_retry_time(client: TestClient, set_env) -> None:
    set_env(SIGNIN_ATTEMPTS_PER_WINDOW="3", SIGNIN_WINDOW_S="300")
    email = random_email()
    accounts.sign_up(SignUpIn(email=email, password=PASSWORD))
    for _ in range(3):
        assert _sign_in(client, email, "Wrong-password-1").status_code == 400
    locked = _sign_in(client, email, PASSWORD)  # even the right password while locked
    assert locked.status_code == 429
    match = re.fullmatch(r"Too many attempts — try again in (\d+) s", _alert(locked))
    assert match and 0 < int(match.group(1)) <= 300
    assert not _set_cookie_headers(locked, sessions.SESSION_COOKIE)


def test_failed_sign_ins_are_counted_per_client_address(any_db_url: str, set_env) -> None:
    """Behind one trusted proxy, the address it saw (X-Forwarded-For) is the client's: fresh
    browsers from one address, each guessing at another email, are stopped; another address is not."""
    set_env(SIGNIN_ATTEMPTS_PER_WINDOW="5", SIGNIN_ATTEMPTS_PER_CLIENT="2", TRUSTED_PROXY_HOPS="1")
    reset_limiter_cache()

    def guess(address: str) -> Any:
        with make_client() as c:  # a new browser (its own form token) for every guess
            token = _csrf(c)
            return c.post("/signin", headers={**SAME_ORIGIN, "x-forwarded-for": address}, data={
                "csrf": token, "next": "/", "email": random_email(), "password": "Wrong-password-1"})

    results = [guess("203.0.113.9") for _ in range(3)]
    assert [r.status_code for r in results] == [400, 400, 429]
    assert guess("198.51.100.4").status_code == 400
    reset_limiter_cache()


def test_sign_ups_are_limited_per_client_address(any_db_url: str, set_env) -> None:
    """The sign-up form passes the client's address to ``accounts.sign_up``: fresh browsers from one
    address create ADVISOR_SIGNUPS_PER_CLIENT_PER_HOUR accounts, the next is refused with the reason
    beside the email field and no session; another address is not."""
    set_env(SIGNUPS_PER_CLIENT_PER_HOUR="2", TRUSTED_PROXY_HOPS="1")
    reset_limiter_cache()

    def sign_up(address: str) -> Any:
        with make_client() as c:  # a new browser (its own form token) for every account
            token = _csrf(c, "/signup")
            return c.post("/signup", headers={**SAME_ORIGIN, "x-forwarded-for": address}, data={
                "csrf": token, "next": "/", "email": random_email(), "password": PASSWORD, "confirm": PASSWORD})

    results = [sign_up("203.0.113.9") for _ in range(3)]
    assert [r.status_code for r in results] == [303, 303, 400]
    refused = results[-1]
    assert "Too many accounts have been created from your network address: at most 2 per hour. Try again in" \
        in unescape(refused.text)
    assert 'id="signup-email-error"' in refused.text
    assert not _set_cookie_headers(refused, sessions.SESSION_COOKIE)
    assert sign_up("198.51.100.4").status_code == 303
    reset_limiter_cache()


def test_sign_ups_from_one_loopback_address_are_limited_too(any_db_url: str, set_env) -> None:
    """With no proxy in front, the connection's peer is the address, 127.0.0.1 included: the
    sixth account from it within the hour is refused (the default limit is 5)."""
    set_env(TRUSTED_PROXY_HOPS="0")
    reset_limiter_cache()

    def sign_up() -> Any:
        with make_client(peer="127.0.0.1") as c:
            token = _csrf(c, "/signup")
            return c.post("/signup", headers=SAME_ORIGIN, data={
                "csrf": token, "next": "/", "email": random_email(), "password": PASSWORD, "confirm": PASSWORD})

    assert [sign_up().status_code for _ in range(6)] == [303] * 5 + [400]
    reset_limiter_cache()


def test_passwords_never_reach_the_logs(client: TestClient, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    email = random_email()
    _sign_up(client, email)
    _sign_in(client, email, PASSWORD + "-wrong")
    ok = _sign_in(client, email)
    assert ok.status_code == 303
    token = _set_cookie_headers(ok, sessions.SESSION_COOKIE)[0].split(";")[0].split("=", 1)[1]
    assert caplog.records
    assert PASSWORD not in caplog.text and token not in caplog.text


# ------------------------------------------------------------------------------------------------
# cross-site request forgery
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/signin", "/signup"])
@pytest.mark.parametrize("forgery", ["no-token", "other-token", "no-cookie", "cross-site"])
def test_a_forged_form_post_is_refused(client: TestClient, path: str, forgery: str) -> None:
    email = random_email()
    accounts.sign_up(SignUpIn(email=email, password=PASSWORD))
    token = _csrf(client, path)
    data = {"csrf": token, "next": "/", "email": email if path == "/signin" else random_email(),
            "password": PASSWORD, "confirm": PASSWORD}
    headers = dict(SAME_ORIGIN)
    if forgery == "no-token":
        del data["csrf"]
    elif forgery == "other-token":
        data["csrf"] = "x" * 43
    elif forgery == "no-cookie":
        client.cookies.clear()
    else:
        headers["sec-fetch-site"] = "cross-site"
    response = client.post(path, headers=headers, data=data)
    assert response.status_code == 403
    assert "Please try again" in _alert(response)
    assert not _set_cookie_headers(response, sessions.SESSION_COOKIE)


def test_a_post_that_is_no_form_is_refused(client: TestClient) -> None:
    token = _csrf(client)
    response = client.post("/signin", headers={**SAME_ORIGIN, "content-type": "application/json"},
                           content=f'{{"csrf": "{token}"}}')
    assert response.status_code == 403


@pytest.mark.parametrize("path", ["/signin", "/signup"])
def test_an_overlong_value_gets_a_message_naming_the_limit(client: TestClient, path: str) -> None:
    """A 10,000-character password is checked and refused with its limit; a form past the size a
    form can have is refused with the limits named, never cut short in silence."""
    token = _csrf(client, path)
    data = {"csrf": token, "next": "/", "email": random_email(), "password": "Ab1" * 3_400, "confirm": "x"}
    long_password = client.post(path, headers=SAME_ORIGIN, data=data)
    assert long_password.status_code == 400 and "Use at most 256 characters." in _alert(long_password)
    huge = client.post(path, headers=SAME_ORIGIN, data={**data, "email": "a" * 70_000})
    assert huge.status_code == 413 and "at most 254 characters" in _alert(huge)
    for response in (long_password, huge):
        for phrase in ("should have", "validation", "String should", "Value should"):
            assert phrase not in response.text, phrase


# ------------------------------------------------------------------------------------------------
# where the forms return to, and the gate
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "expected"), [
    ("/analytics", "/analytics"),
    ("/analytics?range=7&x=%2F", "/analytics?range=7&x=%2F"),
    ("/", "/"),
    (None, "/"),
    ("", "/"),
    ("analytics", "/"),
    ("//evil.example/path", "/"),
    ("https://evil.example/", "/"),
    ("/\\evil.example", "/"),
    ("/%0d%0aSet-Cookie:x", "/%0d%0aSet-Cookie:x"),
    ("/\r\nSet-Cookie: x=1", "/"),
    ("javascript:alert(1)", "/"),
    ("/signin", "/"),
    ("/signup?next=/x", "/"),
    ("/" + "a" * 3000, "/"),
])
def test_next_is_a_local_path_only(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected


def test_an_offsite_next_lands_on_the_start_page(client: TestClient) -> None:
    response = _sign_up(client, random_email(), next_path="//evil.example/")
    assert response.status_code == 303 and response.headers["location"] == "/"


def test_the_gate_sends_a_page_load_without_a_session_to_sign_in(client: TestClient) -> None:
    response = client.get("/analytics?range=7", headers=PAGE)
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=%2Fanalytics%3Frange%3D7"
    # not a page load: left to Streamlit (its own API, assets, the websocket)
    assert client.get("/_stcore/health", headers={"accept": "*/*", "sec-fetch-dest": "empty"}).status_code == 200
    assert client.get("/analytics", headers={"accept": "application/json"}).status_code == 200


def test_the_gate_refuses_a_revoked_or_expired_session_and_deletes_its_cookie(client: TestClient) -> None:
    email = random_email()
    response = _sign_up(client, email)
    token = _set_cookie_headers(response, sessions.SESSION_COOKIE)[0].split(";")[0].split("=", 1)[1]
    assert client.get("/", headers=PAGE).status_code == 200
    # a signed-in visitor opening the sign-in page goes straight to where they were going
    again = client.get("/signin?next=/analytics", headers=PAGE)
    assert again.status_code == 303 and again.headers["location"] == "/analytics"

    assert sessions.revoke_session(token)
    refused = client.get("/", headers=PAGE)
    assert refused.status_code == 303 and refused.headers["location"] == "/signin"
    (deleted,) = _set_cookie_headers(refused, sessions.SESSION_COOKIE)
    assert "Max-Age=0" in deleted or "expires=Thu, 01 Jan 1970" in deleted


# ------------------------------------------------------------------------------------------------
# every field of both forms, filled with a too-long, an empty and a wrong-kind value (C6)
# ------------------------------------------------------------------------------------------------
RAW_PHRASES = ("should have", "validation", "String should", "Value should", "Input should", "Value error")
LONG_EMAIL = "x" * 300 + "@example.com"
EMAIL_LIMIT = "at most 254 characters"
SIGN_IN_CASES: dict[str, dict[str, tuple[str, str]]] = {
    "email": {"too_long": (LONG_EMAIL, EMAIL_LIMIT), "empty": ("", EMAIL_LIMIT),
              "wrong": ("not-an-email", EMAIL_LIMIT)},
    "password": {"too_long": ("p" * 300, "at most 256 characters"), "empty": ("", "1 to 256 characters")},
}
SIGN_UP_CASES: dict[str, dict[str, tuple[str, str]]] = {
    "email": {"too_long": (LONG_EMAIL, EMAIL_LIMIT), "empty": ("", EMAIL_LIMIT),
              "wrong": ("not-an-email", EMAIL_LIMIT)},
    "password": {"too_long": ("Aa1" * 100, "at most 256 characters"), "empty": ("", "at least 10 characters"),
                 "wrong": ("onlylowercaseletters", "at least two kinds")},
    "confirm": {"too_long": ("Aa1" * 100, "at most 256 characters"), "empty": ("", "same password twice"),
                "wrong": (PASSWORD + "x", "same password twice")},
}


@pytest.mark.parametrize(("path", "field"),
                         [("/signin", f) for f in SIGN_IN_CASES] + [("/signup", f) for f in SIGN_UP_CASES])
def test_every_sign_in_field_gets_messages_for_people(client: TestClient, path: str, field: str) -> None:
    cases = (SIGN_IN_CASES if path == "/signin" else SIGN_UP_CASES)[field]
    for case, (value, words) in cases.items():
        good = {"email": random_email(), "password": PASSWORD, "confirm": PASSWORD}
        if field == "password" and path == "/signup":
            good["confirm"] = value  # a new password is typed the same way twice, as a person would
        data = {**good, field: value, "csrf": _csrf(client, path), "next": "/"}
        if path == "/signin":
            data.pop("confirm")
        response = client.post(path, headers=SAME_ORIGIN, data=data)
        assert response.status_code == 400, (path, field, case, response.status_code)
        shown = _alert(response)
        assert words in shown, (path, field, case, shown)
        assert not any(p.lower() in response.text.lower() for p in RAW_PHRASES), (path, field, case, shown)
