"""Logging, request ids, secret redaction and Sentry — the observability of Advisor.

What this module guarantees (claims C8 and C9 in ``SECURITY.md``):

* **Request ids.** ``request_context()`` binds a short id (12 hex chars) to the current context
  (a ``contextvars.ContextVar``, so every Streamlit script thread and every asyncio task has its
  own). Every log record handled by our handlers carries it as ``record.request_id`` (``"-"`` when
  there is none) and every Sentry event carries it as the ``request_id`` tag.
* **One redaction function.** ``redact(text)`` masks secret-shaped text with ``[REDACTED]``:
  OpenAI / Anthropic keys (``sk-…``, ``sk-proj-…``, ``sk-ant-…``), AWS access key ids, GitHub,
  Slack, Google and Stripe tokens, JWTs, ``Bearer``/``Basic`` credentials and ``Authorization``-like
  headers, values of secret-named keys in ``key=value``, ``key: value``, JSON and Python-repr form
  (``password``, ``api_key``, ``access_token``, ``client_secret``, …), passwords inside URLs
  (``postgresql://user:[REDACTED]@host``), and the literal values of the configured secrets
  (``register_secrets(settings.secret_values())``, also in URL-encoded form).
  The same function is applied by a logging filter to the message, the arguments, the exception
  text and the stack text of every record our handlers see (the record is rewritten in place, so
  handlers further up — pytest's ``caplog``, Sentry's logging integration — see the redacted
  text), and by Sentry's ``before_send`` / ``before_send_transaction`` / ``before_breadcrumb`` hooks
  to every string of every event (message, exception values, breadcrumbs, extra, contexts, tags,
  frames).
* **Sentry** is initialised only when ``ADVISOR_SENTRY_DSN`` is set, without PII, without local
  variables (our frames hold prompts and keys), with an ``EventScrubber`` whose denylist adds
  ``prompt``, ``user_message``, ``output``, ``messages``, ``api_key``… to Sentry's default list.

Limits: redaction is pattern based. A secret that has no recognisable shape, is not registered and
is not next to a secret-like key name (say, a password pasted alone into a chat message) is not
recognised; that is why chat content is never logged in the first place. Over-redaction is
accepted (e.g. ``token: 120`` in a log line loses the ``120``).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
import threading
import traceback
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote, quote_plus, unquote, urlsplit

if TYPE_CHECKING:
    from sentry_sdk.transport import Transport

    from core.settings import Settings

__all__ = [
    "REDACTED",
    "SENTRY_DENYLIST",
    "RedactingFilter",
    "RequestIdFilter",
    "current_page",
    "current_request_id",
    "init_sentry",
    "log_exception",
    "new_request_id",
    "redact",
    "register_secrets",
    "request_context",
    "setup_logging",
    "shutdown_sentry",
    "user_error_message",
]

REDACTED: Final = "[REDACTED]"
ROOT_LOGGER: Final = "advisor"
ERRORS_LOGGER: Final = "advisor.errors"
NO_REQUEST_ID: Final = "-"

log = logging.getLogger(ROOT_LOGGER)

# --------------------------------------------------------------------------------------------
# request ids
# --------------------------------------------------------------------------------------------
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("advisor_request_id", default=None)
_tags: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "advisor_request_tags", default=None
)


def new_request_id() -> str:
    """A fresh request id: 12 lower-case hex characters of a uuid4."""
    return uuid.uuid4().hex[:12]


def current_request_id() -> str | None:
    """The request id bound to the current context, or ``None``."""
    return _request_id.get()


def current_page() -> str | None:
    """The page name bound by ``request_context(page=...)``, or ``None``."""
    return (_tags.get() or {}).get("page")


def current_tags() -> dict[str, str]:
    """All tags bound by ``request_context`` (e.g. ``page``), plus ``request_id`` when set."""
    out = dict(_tags.get() or {})
    rid = _request_id.get()
    if rid is not None:
        out["request_id"] = rid
    return out


@contextlib.contextmanager
def request_context(request_id: str | None = None, **tags: str) -> Iterator[str]:
    """Bind a request id (a new one when not given) and tags such as ``page`` for the block.

    Yields the request id. Contexts nest: the previous id and tags come back on exit.
    """
    rid = request_id or new_request_id()
    merged = {**(_tags.get() or {}), **{k: str(v) for k, v in tags.items()}}
    token_id = _request_id.set(rid)
    token_tags = _tags.set(merged)
    try:
        yield rid
    finally:
        _tags.reset(token_tags)
        _request_id.reset(token_id)


def user_error_message(request_id: str) -> str:
    """The only error text a user ever sees: short, no stack trace, with the reference id."""
    return f"Something went wrong — reference {request_id}"


# --------------------------------------------------------------------------------------------
# redaction
# --------------------------------------------------------------------------------------------
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


def _settings_secrets(settings: Settings) -> list[str]:
    """``settings.secret_values()`` plus the passwords inside the database and Redis URLs."""
    values = list(settings.secret_values())
    for url in (settings.database_url, settings.redis_url):
        if url:
            with contextlib.suppress(ValueError):
                password = urlsplit(url).password
                if password:
                    values.extend({password, unquote(password)})
    return values


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


def redact_value(value: Any, _depth: int = 0) -> Any:
    """``redact`` applied to every string inside nested dicts, lists and tuples (keys included)."""
    if isinstance(value, str):
        return redact(value)
    if _depth > 64:
        return value
    if isinstance(value, dict):
        return {
            (redact(k) if isinstance(k, str) else k): redact_value(v, _depth + 1) for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact_value(v, _depth + 1) for v in value]
    if isinstance(value, tuple):
        return tuple(redact_value(v, _depth + 1) for v in value)
    return value


# --------------------------------------------------------------------------------------------
# logging
# --------------------------------------------------------------------------------------------
class RequestIdFilter(logging.Filter):
    """Puts ``request_id`` (``"-"`` when none) and ``page`` on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not isinstance(getattr(record, "request_id", None), str):
            record.request_id = _request_id.get() or NO_REQUEST_ID
        if not isinstance(getattr(record, "page", None), str):
            record.page = current_page() or NO_REQUEST_ID
        return True


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
            if key not in _STANDARD_ATTRS and isinstance(value, str):
                record.__dict__[key] = redact(value)
        record._advisor_redacted = True
        return True


_STANDARD_ATTRS: Final = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
    | {"message", "asctime", "request_id", "page", "_advisor_redacted", "taskName"}
)

TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


class TextFormatter(logging.Formatter):
    """``time level logger [request_id] message`` (exception text on the following lines)."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            RequestIdFilter().filter(record)
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, request_id, page, message, exception, extras."""

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            RequestIdFilter().filter(record)
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", NO_REQUEST_ID),
            "page": getattr(record, "page", NO_REQUEST_ID),
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            payload["exception"] = record.exc_text
        if record.stack_info:
            payload["stack"] = record.stack_info
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                payload[key] = value if isinstance(value, int | float | bool | None) else str(value)
        return redact(json.dumps(redact_value(payload), ensure_ascii=False, default=str))


class _NotAdvisor(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == ROOT_LOGGER or record.name.startswith(ROOT_LOGGER + "."))


_HANDLER_MARK: Final = "_advisor_handler"
_setup_lock = threading.Lock()


def _make_formatter(fmt: str) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else TextFormatter()


def _our_handler(logger: logging.Logger) -> logging.Handler | None:
    for handler in logger.handlers:
        if getattr(handler, _HANDLER_MARK, False):
            return handler
    return None


def setup_logging(settings: Settings, *, stream: Any = None) -> logging.Logger:
    """Configure the ``advisor`` logger; idempotent (safe on every Streamlit rerun).

    * one handler on ``advisor`` (stderr unless ``stream``) with ``RequestIdFilter`` +
      ``RedactingFilter`` and a text or JSON formatter (``settings.log_format``);
    * ``advisor`` propagates, so pytest's ``caplog`` still sees (already redacted) records;
    * one handler on the root logger, WARNING and up, for other libraries' records, same filters
      (it skips ``advisor.*`` records, which the first handler already wrote);
    * the configured secrets are registered with ``register_secrets``.

    Calling it again replaces the formatter, level and stream instead of adding handlers.
    """
    register_secrets(_settings_secrets(settings))
    with _setup_lock:
        logger = logging.getLogger(ROOT_LOGGER)
        logger.setLevel(settings.log_level)
        out = stream if stream is not None else sys.stderr
        for target, level, extra_filter in (
            (logger, logging.NOTSET, None),
            (logging.getLogger(), logging.WARNING, _NotAdvisor()),
        ):
            handler = _our_handler(target)
            if handler is None:
                handler = logging.StreamHandler(out)
                setattr(handler, _HANDLER_MARK, True)
                if extra_filter is not None:
                    handler.addFilter(extra_filter)
                handler.addFilter(RequestIdFilter())
                handler.addFilter(RedactingFilter())
                target.addHandler(handler)
            elif isinstance(handler, logging.StreamHandler) and handler.stream is not out:
                handler.setStream(out)
            handler.setLevel(level)
            handler.setFormatter(_make_formatter(settings.log_format))
        return logger


# --------------------------------------------------------------------------------------------
# Sentry
# --------------------------------------------------------------------------------------------
SENTRY_DENYLIST: Final[tuple[str, ...]] = (
    "password", "passwd", "pwd", "secret", "api_key", "apikey", "x_api_key", "x-api-key", "auth",
    "authorization", "proxy-authorization", "credentials", "private_key", "privatekey", "token",
    "access_token", "refresh_token", "id_token", "session", "sessionid", "cookie", "set_cookie",
    "csrftoken", "csrf_token", "_xsrf", "xsrf-token", "dsn", "database_url", "redis_url",
    "openai_api_key", "anthropic_api_key", "sentry_dsn", "deletion_salt", "salt",
    "prompt", "system_prompt", "prompt_text", "user_message", "message_text", "messages", "text",
    "content", "output", "completion", "answer", "history", "body", "settings",
)  # fmt: skip

_sentry_ready = False


def _tags_now(event: dict[str, Any]) -> None:
    tags = event.get("tags")
    if not isinstance(tags, dict):
        tags = {}
        event["tags"] = tags
    for key, value in current_tags().items():
        tags.setdefault(key, value)


def _before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
    _tags_now(event)
    request = event.get("request")
    if isinstance(request, dict):  # never ship request bodies or cookies
        for key in ("data", "cookies"):
            request.pop(key, None)
    redacted: dict[str, Any] = redact_value(event)
    return redacted


def _before_breadcrumb(crumb: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
    redacted: dict[str, Any] = redact_value({k: v if _jsonish(v) else repr(v) for k, v in crumb.items()})
    data = redacted.get("data")
    if isinstance(data, dict):
        redacted["data"] = {k: v if _jsonish(v) else redact(repr(v)) for k, v in data.items()}
    return redacted


def _jsonish(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | dict | list | tuple | datetime) or value is None


def init_sentry(settings: Settings, transport: Transport | None = None) -> bool:
    """Start Sentry when ``settings.sentry_dsn`` is set; returns whether it is on.

    Options: no PII (``send_default_pii`` left unset, which Sentry 2.75 treats as ``False``
    without its deprecation warning), ``include_local_variables=False``, an ``EventScrubber`` with
    ``SENTRY_DENYLIST`` (recursive), redaction hooks on events, transactions and breadcrumbs,
    ``request_id`` / ``page`` tags read at send time, ``traces_sample_rate``, ``environment`` and
    ``release`` (``advisor@<core.__version__>``). Logging integration: records become breadcrumbs
    (INFO+) and events (ERROR+), except the ``advisor.errors`` logger that ``log_exception``
    uses (it captures explicitly, so nothing is sent twice). ``transport`` replaces the HTTP
    transport (tests pass one that captures envelopes).
    """
    global _sentry_ready
    if settings.sentry_dsn is None or not settings.sentry_dsn.get_secret_value():
        return False
    import sentry_sdk
    from sentry_sdk.integrations.logging import LoggingIntegration, ignore_logger
    from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber

    import core

    register_secrets(_settings_secrets(settings))
    denylist = list(dict.fromkeys([*DEFAULT_DENYLIST, *SENTRY_DENYLIST]))
    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        transport=transport,
        release=f"advisor@{core.__version__}",
        environment=settings.sentry_environment,
        traces_sample_rate=settings.sentry_traces_sample_rate,
        include_local_variables=False,
        max_request_body_size="never",
        event_scrubber=EventScrubber(denylist=denylist, recursive=True),
        before_send=_before_send,  # type: ignore[arg-type]
        before_send_transaction=_before_send,  # type: ignore[arg-type]
        before_breadcrumb=_before_breadcrumb,  # type: ignore[arg-type]
        integrations=[LoggingIntegration(level=logging.INFO, event_level=logging.ERROR)],
        enable_logs=False,
    )
    ignore_logger(ERRORS_LOGGER)
    _sentry_ready = True
    return True


def shutdown_sentry() -> None:
    """Flush and close the Sentry client (tests; process exit)."""
    global _sentry_ready
    if not _sentry_ready:
        return
    import sentry_sdk

    client = sentry_sdk.get_client()
    client.close(timeout=2)
    sentry_sdk.get_global_scope().set_client(None)
    _sentry_ready = False


def log_exception(exc: BaseException, *, where: str) -> str:
    """Log ``exc`` (with traceback, redacted) under the current request id and send it to Sentry.

    Returns the request id the user should be shown (a new one when no context is bound).
    """
    rid = current_request_id() or new_request_id()
    with request_context(rid) if current_request_id() is None else contextlib.nullcontext(rid):
        logging.getLogger(ERRORS_LOGGER).error(
            "unhandled %s in %s", type(exc).__name__, where, exc_info=(type(exc), exc, exc.__traceback__)
        )
        if _sentry_ready:
            import sentry_sdk

            with sentry_sdk.new_scope() as scope:
                scope.set_tag("where", where)
                scope.set_tag("request_id", rid)
                sentry_sdk.capture_exception(exc)
    return rid
