"""Secret redaction: one function, ``redact``, masks secret-shaped text with ``[REDACTED]``.

Claim C9 in ``SECURITY.md`` (no secret reaches the logs or Sentry) rests on this module.
``redact(text)`` masks OpenAI / Anthropic keys (``sk-…``, ``sk-proj-…``, ``sk-ant-…``), AWS access
key ids, GitHub, Slack, Google and Stripe tokens, JWTs, ``Bearer``/``Basic`` credentials and
``Authorization``-like headers, values of secret-named keys in ``key=value``, ``key: value``, JSON
and Python-repr form (``password``, ``api_key``, ``access_token``, ``client_secret``, …), passwords
inside URLs (``postgresql://user:[REDACTED]@host``), and the literal values of the configured
secrets (``register_settings_secrets(settings)``, also in URL-encoded form).

Where it is applied:

* ``RedactingFilter``, a logging filter on every handler ``core.log_setup`` installs, redacts the
  message, the arguments, the exception text and the stack text of every record (the record is
  rewritten in place, so handlers further up — pytest's ``caplog``, Sentry's logging integration —
  see the redacted text);
* ``redact_value`` redacts every string of a nested structure: Sentry's ``before_send`` /
  ``before_send_transaction`` / ``before_breadcrumb`` hooks (``core.error_reports``) apply it to
  every event (message, exception values, breadcrumbs, extra, contexts, tags, frames), with
  ``addresses=True``: there ``scrub_addresses`` also replaces every IPv4 and IPv6 address (with its
  port, if any) by ``[ip]``, so a client's address (Uvicorn's access lines "127.0.0.1:54321 - GET
  ...", a request's URL or headers) never reaches Sentry (claim C25). The local logs keep addresses.

Limits: redaction is pattern based. A secret that has no recognisable shape, is not registered and
is not next to a secret-like key name (say, a password pasted alone into a chat message) is not
recognised; that is why chat content is never logged in the first place. Over-redaction is
accepted (e.g. ``token: 120`` in a log line loses the ``120``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
import threading
import traceback
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote, quote_plus, unquote, urlsplit

if TYPE_CHECKING:
    from core.settings import Settings

__all__ = [
    "ADDRESS_MASK",
    "REDACTED",
    "STANDARD_RECORD_ATTRS",
    "RedactingFilter",
    "clear_registered_secrets",
    "redact",
    "redact_value",
    "register_secrets",
    "register_settings_secrets",
    "scrub_addresses",
]

REDACTED: Final = "[REDACTED]"
ADDRESS_MASK: Final = "[ip]"
_MIN_SECRET_LEN: Final = 6
_secrets_lock = threading.Lock()
_secret_values: set[str] = set()
_secret_re: re.Pattern[str] | None = None

# key names whose value is a secret: the secret word must END the key ("max_tokens" and
# "token_count" are not secrets, "access_token", "openai_api_key", "x-api-key" are).
_KEY = (
    r"(?:[A-Za-z0-9]+[_.\-])*"
    r"(?:password|passwd|passphrase|pwd|secret|token|api[_\-]?key|apikey|access[_\-]?key"
    r"|private[_\-]?key|secret[_\-]?key|credentials?|auth|authorization|cookie|session[_\-]?id"
    r"|dsn|salt)"
)
_STATIC_PATTERNS: Final[list[tuple[re.Pattern[str], str]]] = [
    # credentials inside URLs: scheme://user:password@host -> scheme://user:[REDACTED]@host
    (
        re.compile(r"(?P<p>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/?#@\"']*:)[^\s@/?#\"']+(?=@)"),
        r"\g<p>" + REDACTED,
    ),
    # JSON / Python repr: "password": "value"  'api_key': 'value'
    (
        re.compile(
            r"(?P<p>\\?([\"'])" + _KEY + r"\\?\2\s*:\s*)(?P<q>\\?[\"'])(?:(?!(?P=q))(?:\\.|.))*(?P=q)", re.I
        ),
        r"\g<p>\g<q>" + REDACTED + r"\g<q>",
    ),
    # JSON with a non-string value: "token": 123456
    (
        re.compile(
            r"(?P<p>([\"'])" + _KEY + r"\2\s*:\s*)(?![\"'\[{\s]|null\b|true\b|false\b)[^,}\]\s]+", re.I
        ),
        r"\g<p>" + REDACTED,
    ),
    # headers: Authorization: Basic xxx / Cookie: a=b; c=d (to the end of the line)
    (
        re.compile(
            r"(?P<p>\b(?:proxy-)?(?:authorization|cookie|set-cookie|x-api-key)\s*[:=]\s*)[^\r\n\"']+", re.I
        ),
        r"\g<p>" + REDACTED,
    ),
    # schemes: Bearer xxx, Basic xxx, Token xxx
    (
        re.compile(
            r"(?P<p>\b(?:bearer|basic|token)\s+)(?=[A-Za-z]*[0-9._~+/\-])[A-Za-z0-9._~+/\-]{8,}=*", re.I
        ),
        r"\g<p>" + REDACTED,
    ),
    # key=value, key: value (unquoted or quoted)
    (
        re.compile(
            r"(?P<p>\b" + _KEY + r"\s*(?:=|:)\s*)(?![\"']?\[REDACTED\])"
            r"(?:\"[^\"\n]*\"|'[^'\n]*'|[^\s\"'&,;)}\]]+)",
            re.I,
        ),
        r"\g<p>" + REDACTED,
    ),
    # well-known token shapes
    (re.compile(r"\bsk-[A-Za-z0-9][A-Za-z0-9_\-]{15,}"), REDACTED),  # OpenAI, Anthropic (sk-ant-)
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), REDACTED),  # AWS access key id
    (re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"), REDACTED),  # GitHub
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9\-]{10,}"), REDACTED),  # Slack
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{35}"), REDACTED),  # Google
    (re.compile(r"\b[rs]k_(?:live|test)_[0-9A-Za-z]{16,}"), REDACTED),  # Stripe
    (re.compile(r"\beyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*"), REDACTED),  # JWT
    # "api key 0123abcd…" / "secret is 9f8e…": a long token right after a secret word
    (
        re.compile(
            r"(?P<p>\b(?:key|token|secret|password|passwd|credential)s?\b(?:\s+is)?\s+)"
            r"(?=[A-Za-z0-9_\-+/]*\d)[A-Za-z0-9_\-+/]{16,}=*",
            re.I,
        ),
        r"\g<p>" + REDACTED,
    ),
]


def register_secrets(values: Iterable[str]) -> None:
    """Add literal secret values that ``redact`` always masks (values shorter than 6 are ignored).

    The raw value and its URL-encoded forms are registered. Safe to call repeatedly.
    """
    global _secret_re
    with _secrets_lock:
        for value in values:
            if not value or len(value) < _MIN_SECRET_LEN:
                continue
            _secret_values.add(value)
            _secret_values.add(quote(value, safe=""))
            _secret_values.add(quote_plus(value, safe=""))
            # a DSN or URL secret: its password part on its own
            with contextlib.suppress(ValueError):
                parts = urlsplit(value)
                if parts.password and len(parts.password) >= _MIN_SECRET_LEN:
                    _secret_values.add(parts.password)
                    _secret_values.add(unquote(parts.password))
        ordered = sorted(_secret_values, key=len, reverse=True)
        _secret_re = re.compile("|".join(re.escape(v) for v in ordered)) if ordered else None


def clear_registered_secrets() -> None:
    """For tests: forget every registered literal secret."""
    global _secret_re
    with _secrets_lock:
        _secret_values.clear()
        _secret_re = None


def register_settings_secrets(settings: Settings) -> None:
    """Register the configured secrets: ``settings.secret_values()`` plus the passwords inside the
    database and Redis URLs (``register_secrets``)."""
    values = list(settings.secret_values())
    for url in (settings.database_url, settings.redis_url):
        if url:
            with contextlib.suppress(ValueError):
                password = urlsplit(url).password
                if password:
                    values.extend({password, unquote(password)})
    register_secrets(values)


def redact(text: str) -> str:
    """Mask secrets in ``text`` with ``[REDACTED]`` (see the module docstring for what is masked)."""
    if not text:
        return text
    secret_re = _secret_re
    if secret_re is not None:
        text = secret_re.sub(REDACTED, text)
    for pattern, replacement in _STATIC_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


# candidates, each confirmed by ``ipaddress`` (so "08:52:29" or "1.2.3" is never touched): an IPv6
# address, optionally in brackets, then an IPv4 one; either with an optional ":port"
_IPV6_CANDIDATE: Final = re.compile(
    r"(?<![\w:.\[])(?P<open>\[)?(?P<ip>[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}"
    r"(?:(?<=:)(?:\d{1,3}\.){3}\d{1,3})?)(?:%\w+(?:\.\w+)*)?(?(open)\](?::\d{1,5})?)(?![\w:]|\.\d)"
)
_IPV4_CANDIDATE: Final = re.compile(r"(?<![\w.])(?P<ip>(?:\d{1,3}\.){3}\d{1,3})(?::\d{1,5})?(?!\w|\.\d)")


def _mask_if_address(match: re.Match[str]) -> str:
    candidate = match.group("ip")
    if not any(ch.isalnum() for ch in candidate):  # a bare "::" in prose
        return match.group(0)
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return match.group(0)
    return ADDRESS_MASK


def scrub_addresses(text: str) -> str:
    """Replace every IPv4 and IPv6 address in ``text`` (with its port, if any) by ``[ip]``."""
    if not text or (":" not in text and "." not in text):
        return text
    return _IPV4_CANDIDATE.sub(_mask_if_address, _IPV6_CANDIDATE.sub(_mask_if_address, text))


def redact_value(value: Any, *, addresses: bool = False, _depth: int = 0) -> Any:
    """``redact`` applied to every string inside nested dicts, lists and tuples (keys included);
    with ``addresses``, ``scrub_addresses`` too."""
    if isinstance(value, str):
        return scrub_addresses(redact(value)) if addresses else redact(value)
    if _depth > 64:
        return value
    if isinstance(value, dict):
        return {
            redact_value(k, addresses=addresses): redact_value(v, addresses=addresses, _depth=_depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact_value(v, addresses=addresses, _depth=_depth + 1) for v in value]
    if isinstance(value, tuple):
        return tuple(redact_value(v, addresses=addresses, _depth=_depth + 1) for v in value)
    return value


# attributes every log record has, plus the ones our filters add: anything else is an ``extra``
STANDARD_RECORD_ATTRS: Final = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
    | {"message", "asctime", "request_id", "page", "_advisor_redacted", "taskName"}
)


class RedactingFilter(logging.Filter):
    """Rewrites the record in place: message (with its args), exception and stack text redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_advisor_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the record
            message = f"{record.msg!r} % {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in list(record.__dict__.items()):
            if key not in STANDARD_RECORD_ATTRS and isinstance(value, str):
                record.__dict__[key] = redact(value)
        record._advisor_redacted = True
        return True
