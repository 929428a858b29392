"""The local sign-in and create-account pages: plain, accessible HTML forms (``core.auth_routes``).

Each page is one HTML document with no script (the Content-Security-Policy allows none inline) and
its styles in one ``<style>`` element (``style-src 'unsafe-inline'``). Every input has a visible
``<label>``; an error is shown as text next to its field, tied to it with ``aria-describedby`` and
``aria-invalid``, and summed up at the top of the form in a ``role="alert"`` box, so a screen reader
announces it when the page loads. The forms post to the app's own routes (``form-action 'self'``)
with a hidden CSRF token and the local path to return to (``next``).

``sign_in_form`` is also what the Streamlit page shows (through ``st.html``) when a tab's session
ends while it is open: the same form, posting to the same route.

Every value written into the HTML goes through ``html.escape``: an email typed with markup in it is
shown as typed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Final
from urllib.parse import urlencode

__all__ = [
    "SIGN_IN_PATH",
    "SIGN_UP_PATH",
    "path_with_next",
    "sign_in_form",
    "sign_in_page",
    "sign_up_page",
]

SIGN_IN_PATH: Final = "/signin"
SIGN_UP_PATH: Final = "/signup"

_TAGLINE: Final = "An advisor for engineering leaders that knows your role, stack and style."

_STYLE: Final = """
:root { color-scheme: light; }
body { margin: 0; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #111111;
       background: #ffffff; line-height: 1.5; }
main { max-width: 26rem; margin: 4rem auto; padding: 0 1.25rem; }
h1 { font-size: 2rem; margin: 0 0 0.25rem; }
h2 { font-size: 1.35rem; margin: 2rem 0 1rem; }
p.tagline { margin: 0; color: #444444; }
form { display: flex; flex-direction: column; gap: 0.35rem; }
label { font-weight: 600; margin-top: 0.75rem; }
input[type=email], input[type=password] { font: inherit; padding: 0.55rem 0.65rem; border: 1px solid #767676;
       border-radius: 0.4rem; }
input:focus-visible, button:focus-visible, a:focus-visible { outline: 3px solid #1a5fb4; outline-offset: 2px; }
input[aria-invalid=true] { border-color: #b00020; }
.hint { font-size: 0.9rem; color: #444444; margin: 0; }
.field-error { color: #b00020; margin: 0; font-size: 0.95rem; }
.alert { border: 1px solid #b00020; background: #fdecee; color: #5c0011; border-radius: 0.4rem;
         padding: 0.75rem 1rem; margin-bottom: 0.5rem; }
button { font: inherit; font-weight: 600; margin-top: 1.25rem; padding: 0.6rem 1rem; border: 0;
         border-radius: 0.4rem; background: #b3261e; color: #ffffff; cursor: pointer; }
.switch { margin-top: 1.5rem; }
a { color: #1a5fb4; }
"""


def path_with_next(path: str, next_path: str) -> str:
    """``path`` with ``?next=…`` when the place to return to is not the start page."""
    return path if next_path == "/" else f"{path}?{urlencode({'next': next_path})}"


def _hidden(csrf: str, next_path: str) -> str:
    return (
        f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
        f'<input type="hidden" name="next" value="{escape(next_path)}">'
    )


def _alert(errors: Mapping[str, str]) -> str:
    if not errors:
        return ""
    if len(errors) == 1:
        (message,) = errors.values()
        return f'<div class="alert" role="alert"><p>{escape(message)}</p></div>'
    items = "".join(f"<li>{escape(m)}</li>" for m in errors.values())
    return f'<div class="alert" role="alert"><p>Please correct these and try again:</p><ul>{items}</ul></div>'


def _field(
    *, name: str, label: str, kind: str, autocomplete: str, value: str = "",
    error: str | None = None, hint: str | None = None, prefix: str,
) -> str:
    field_id = f"{prefix}-{name}"
    described = [i for i, text in ((f"{field_id}-hint", hint), (f"{field_id}-error", error)) if text]
    attrs = [
        f'id="{field_id}"', f'name="{name}"', f'type="{kind}"', f'autocomplete="{autocomplete}"',
        "required",
    ]
    if value:
        attrs.append(f'value="{escape(value)}"')
    if described:
        attrs.append(f'aria-describedby="{" ".join(described)}"')
    if error:
        attrs.append('aria-invalid="true"')
    parts = [f'<label for="{field_id}">{escape(label)}</label>']
    if hint:
        parts.append(f'<p class="hint" id="{field_id}-hint">{escape(hint)}</p>')
    parts.append(f"<input {' '.join(attrs)}>")
    if error:
        parts.append(f'<p class="field-error" id="{field_id}-error">{escape(error)}</p>')
    return "".join(parts)


def sign_in_form(*, csrf: str, next_path: str, email: str = "", errors: Sequence[str] = (),
                 prefix: str = "signin") -> str:
    """The "Sign in" heading and the sign-in ``<form>`` (no page around it): email, password, the
    button. ``prefix`` keeps the ids unique on the page."""
    return (
        f'<h2 id="{prefix}-heading">Sign in</h2>'
        f'<form method="post" action="{escape(SIGN_IN_PATH)}" aria-labelledby="{prefix}-heading" novalidate>'
        + _alert({str(i): message for i, message in enumerate(errors)})
        + _hidden(csrf, next_path)
        + _field(name="email", label="Email", kind="email", autocomplete="username",
                 value=email, prefix=prefix)
        + _field(name="password", label="Password", kind="password", autocomplete="current-password", prefix=prefix)
        + '<button type="submit">Sign in</button></form>'
    )


def _page(*, title: str, body: str) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · Advisor</title><style>{_STYLE}</style></head>"
        f'<body><main><h1>Advisor</h1><p class="tagline">{escape(_TAGLINE)}</p>{body}</main></body></html>'
    )


def sign_in_page(*, csrf: str, next_path: str, email: str = "", errors: Sequence[str] = ()) -> str:
    """The whole sign-in page: the form (with ``errors`` above it) and the way to create an account."""
    body = (
        sign_in_form(csrf=csrf, next_path=next_path, email=email, errors=errors)
        + f'<p class="switch">New to Advisor? <a href="{escape(path_with_next(SIGN_UP_PATH, next_path))}">'
        "Create an account</a></p>"
    )
    return _page(title="Sign in", body=body)


def sign_up_page(*, csrf: str, next_path: str, min_password_length: int, email: str = "",
                 errors: Mapping[str, str] | None = None) -> str:
    """The create-account page. ``errors`` maps ``email``, ``password``, ``confirm`` (or ``form``)
    to the message shown next to that field."""
    errors = dict(errors or {})
    prefix = "signup"
    labels = {"email": "Email", "password": "Password", "confirm": "Repeat password"}
    summary = errors if len(errors) < 2 else {
        field: f"{labels[field]}: {message}" if field in labels else message for field, message in errors.items()
    }
    form = (
        f'<form method="post" action="{escape(SIGN_UP_PATH)}" aria-labelledby="signup-heading" novalidate>'
        + _alert(summary)
        + _hidden(csrf, next_path)
        + _field(name="email", label="Email", kind="email", autocomplete="username",
                 value=email, error=errors.get("email"), prefix=prefix)
        + _field(name="password", label="Password", kind="password", autocomplete="new-password",
                 error=errors.get("password"), prefix=prefix,
                 hint=f"At least {min_password_length} characters, mixing letters, digits or symbols.")
        + _field(name="confirm", label="Repeat password", kind="password", autocomplete="new-password",
                 error=errors.get("confirm"), prefix=prefix)
        + '<button type="submit">Create account</button></form>'
    )
    body = (
        '<h2 id="signup-heading">Create account</h2>'
        + form
        + f'<p class="switch">Already have an account? <a href="{escape(path_with_next(SIGN_IN_PATH, next_path))}">'
        "Sign in</a></p>"
    )
    return _page(title="Create account", body=body)
