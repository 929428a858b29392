"""AppTest of the chat page's link ``?conversation=<id>&run=<id>`` (what a search result opens): the
conversation opens at that turn, loaded back however old it is; a foreign or malformed id opens the
user's own newest conversation (C3)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from core.db import system_session, user_session
from models import AgentRun, Conversation
from models.types import utcnow
from tests.factories import make_user
from tests.ui.conftest import page_file
from ui.text import literal

CHAT = "pages/chat.py"


def conversation(user_id: uuid.UUID, title: str, turns: int, *, days_ago: int) -> tuple[uuid.UUID, list[uuid.UUID]]:
    conv = Conversation(user_id=user_id, title=title, agent="general", created_at=utcnow() - timedelta(days=days_ago))
    with user_session(user_id) as s:
        s.add(conv)
    runs = [
        AgentRun(user_id=user_id, conversation_id=conv.id, user_message=f"{title} question {i}",
                 output=f"{title} answer {i}", status="ok", provider="demo", model="demo", request_id=f"r{i}",
                 created_at=utcnow() - timedelta(days=days_ago, minutes=turns - i))
        for i in range(turns)
    ]
    with system_session() as s:
        s.add_all(runs)
    return conv.id, [r.id for r in runs]


def open_link(app: Any, params: dict[str, str], setup: Any = None) -> Any:
    at = app()
    if setup is not None:
        setup(at.advisor_user.id)
    for name, value in params.items():
        at.query_params[name] = value
    at.switch_page(page_file(CHAT)).run()
    assert not at.exception
    return at


def shown_messages(at: Any) -> list[str]:
    return [m.value for m in at.main.markdown]


def test_a_link_opens_an_old_conversation_at_its_first_turn(app):
    ids: dict[str, Any] = {}

    def setup(user_id: uuid.UUID) -> None:
        ids["old"] = conversation(user_id, "Offsite", 60, days_ago=30)
        ids["new"] = conversation(user_id, "Roadmap", 2, days_ago=0)

    at = app()
    setup(at.advisor_user.id)
    (old_conv, old_runs), _ = ids["old"], ids["new"]
    at.query_params["conversation"] = str(old_conv)
    at.query_params["run"] = str(old_runs[0])
    at.switch_page(page_file(CHAT)).run()
    assert not at.exception
    assert literal("Offsite") in [h.value for h in at.header]
    messages = shown_messages(at)
    assert literal("Offsite question 0") in messages  # older than the newest 50: loaded back to it
    assert not any("Roadmap" in m for m in messages)
    assert "Found by your search:" in [c.value for c in at.caption]
    assert "conversation" not in at.query_params and "run" not in at.query_params  # consumed


def test_a_link_to_another_users_conversation_opens_your_own(app):
    bob = make_user()
    bob_conv, bob_runs = conversation(bob, "Bobs secret", 1, days_ago=0)
    at = open_link(app, {"conversation": str(bob_conv), "run": str(bob_runs[0])},
                   setup=lambda uid: conversation(uid, "Mine", 1, days_ago=0))
    headers = [h.value for h in at.header]
    assert literal("Bobs secret") not in headers and literal("New conversation") in headers  # the newest
    assert not any("Bobs secret" in m for m in shown_messages(at))
    assert "Found by your search:" not in [c.value for c in at.caption]


def test_a_malformed_link_opens_the_newest_conversation(app):
    at = open_link(app, {"conversation": "not-a-uuid", "run": "x"},
                   setup=lambda uid: conversation(uid, "Older one", 1, days_ago=3))
    assert literal("New conversation") in [h.value for h in at.header]  # the newest (the page made it)
    assert not at.error
