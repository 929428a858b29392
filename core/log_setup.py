"""Logging setup: the ``advisor`` logger's handlers, their request-id and redaction filters, formats.

What ``setup_logging`` guarantees (claims C8 and C9 in ``SECURITY.md``):

* every record our handlers see carries the request id bound by ``core.request_context`` as
  ``record.request_id`` (``"-"`` when there is none) and the page as ``record.page``;
* every record is redacted in place by ``core.redaction.RedactingFilter`` before any formatter
  (ours, pytest's ``caplog``, Sentry's logging integration) reads it, and each formatted line is
  redacted once more;
* lines are ``time level logger [request_id] message`` (text) or one JSON object each (json).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from core.redaction import STANDARD_RECORD_ATTRS, RedactingFilter, redact, redact_value, register_settings_secrets
from core.request_context import current_page, current_request_id

if TYPE_CHECKING:
    from core.settings import Settings

__all__ = [
    "NO_REQUEST_ID",
    "ROOT_LOGGER",
    "JsonFormatter",
    "RequestIdFilter",
    "TextFormatter",
    "setup_logging",
]

ROOT_LOGGER: Final = "advisor"
NO_REQUEST_ID: Final = "-"
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


class RequestIdFilter(logging.Filter):
    """Puts ``request_id`` (``"-"`` when none) and ``page`` on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not isinstance(getattr(record, "request_id", None), str):
            record.request_id = current_request_id() or NO_REQUEST_ID
        if not isinstance(getattr(record, "page", None), str):
            record.page = current_page() or NO_REQUEST_ID
        return True


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
            if key not in STANDARD_RECORD_ATTRS and not key.startswith("_"):
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
    * the configured secrets are registered with ``register_settings_secrets``.

    Calling it again replaces the formatter, level and stream instead of adding handlers.
    """
    register_settings_secrets(settings)
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
