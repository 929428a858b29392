"""core.request_context: request ids nest and restore; the user-facing error text names the id (C8)."""

from __future__ import annotations

import re

from core.request_context import (
    current_page,
    current_request_id,
    new_request_id,
    request_context,
    user_error_message,
)


def test_request_context_nests_and_restores() -> None:
    rid = new_request_id()
    assert re.fullmatch(r"[0-9a-f]{12}", rid)
    assert new_request_id() != rid
    with request_context(rid, page="chat") as outer:
        assert outer == rid == current_request_id()
        with request_context() as inner:
            assert inner != rid and current_request_id() == inner
            assert current_page() == "chat"
        assert current_request_id() == rid
    assert current_request_id() is None


def test_user_error_message_names_the_reference() -> None:
    assert user_error_message("a1b2c3d4e5f6") == "Something went wrong — reference a1b2c3d4e5f6"
