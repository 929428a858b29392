"""Error reports: an unhandled exception is logged with its request id and sent to Sentry.

``log_exception(exc, where=...)`` writes the exception (traceback redacted) on the
``advisor.errors`` logger under the current request id and, when Sentry is on, captures it with the
``request_id`` and ``where`` tags; it returns the id the user is shown (claim C8 in ``SECURITY.md``).

**Sentry** (``init_sentry``) is initialised only when ``ADVISOR_SENTRY_DSN`` is set, without PII,
without local variables (our frames hold prompts and keys), with an ``EventScrubber`` whose
denylist adds ``prompt``, ``user_message``, ``output``, ``messages``, ``api_key``… to Sentry's
default list, and with ``before_send`` / ``before_send_transaction`` / ``before_breadcrumb`` hooks
that apply ``core.redaction.redact_value`` to every string of every event (message, exception
values, breadcrumbs, extra, contexts, tags, frames) — claim C9. Every event carries the
``request_id`` and ``page`` tags bound by ``core.request_context``.

Only errors go to Sentry (claim C25): release-health session tracking is off (the SDK's Starlette
integration would otherwise count every HTTP request of the Streamlit server as a session and send
the aggregates every minute), and the same hooks replace every IPv4 / IPv6 address, with its port,
by ``[ip]`` (``core.redaction.scrub_addresses``): Uvicorn's access lines ("127.0.0.1:54321 - GET
...") become breadcrumbs, and a request's URL or headers can name a client's address. The
request's client address itself (``request.env.REMOTE_ADDR``) and ``user.ip_address`` are dropped.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from core.redaction import redact_value, register_settings_secrets
from core.request_context import current_request_id, current_tags, new_request_id, request_context

if TYPE_CHECKING:
    from sentry_sdk.transport import Transport

    from core.settings import Settings

__all__ = [
    "ERRORS_LOGGER",
    "SENTRY_DENYLIST",
    "init_sentry",
    "log_exception",
    "shutdown_sentry",
]

ERRORS_LOGGER: Final = "advisor.errors"

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
    if isinstance(request, dict):  # never ship request bodies, cookies or the client's address
        for key in ("data", "cookies", "env"):
            request.pop(key, None)
    user = event.get("user")
    if isinstance(user, dict):
        user.pop("ip_address", None)
    redacted: dict[str, Any] = redact_value(event, addresses=True)
    return redacted


def _before_breadcrumb(crumb: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
    readable = {k: v if _jsonish(v) else repr(v) for k, v in crumb.items()}
    data = readable.get("data")
    if isinstance(data, dict):
        readable["data"] = {k: v if _jsonish(v) else repr(v) for k, v in data.items()}
    redacted: dict[str, Any] = redact_value(readable, addresses=True)
    return redacted


def _jsonish(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | dict | list | tuple | datetime) or value is None


def init_sentry(settings: Settings, transport: Transport | None = None) -> bool:
    """Start Sentry when ``settings.sentry_dsn`` is set; returns whether it is on.

    Options: no PII (``send_default_pii`` left unset, which Sentry 2.75 treats as ``False``
    without its deprecation warning), ``auto_session_tracking=False`` (no release-health
    sessions: errors only), ``include_local_variables=False``, an ``EventScrubber`` with
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

    register_settings_secrets(settings)
    denylist = list(dict.fromkeys([*DEFAULT_DENYLIST, *SENTRY_DENYLIST]))
    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        transport=transport,
        release=f"advisor@{core.__version__}",
        environment=settings.sentry_environment,
        traces_sample_rate=settings.sentry_traces_sample_rate,
        auto_session_tracking=False,
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
