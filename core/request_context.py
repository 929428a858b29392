"""Request ids and request tags: which page run or chat turn a log line or error belongs to.

``request_context()`` binds a short id (12 hex chars) and tags such as ``page`` to the current
context (a ``contextvars.ContextVar``, so every Streamlit script thread and every asyncio task has
its own). The log handlers put the id on every record (``core.log_setup``), Sentry events carry it
as the ``request_id`` tag (``core.error_reports``), and a user who hits an error sees only
``user_error_message(request_id)`` — claim C8 in ``SECURITY.md``.
"""

from __future__ import annotations

import contextlib
import contextvars
import uuid
from collections.abc import Iterator, Mapping

__all__ = [
    "current_page",
    "current_request_id",
    "current_tags",
    "new_request_id",
    "request_context",
    "user_error_message",
]

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
