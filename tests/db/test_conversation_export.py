"""One conversation as Markdown (issue 19, core.conversation_export): title, mode, each turn with
its time, model and cost; earlier versions kept and marked; user text literal; answers through the
export rules (no image embedded); another user's conversation is not found."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from core.conversation_export import conversation_markdown, export_file_name
from core.db import NotFound, system_session
from models import AgentRun, Conversation
from tests.factories import make_user

START = datetime(2026, 3, 4, 9, 30, tzinfo=UTC)


def _seed(user_id: uuid.UUID) -> uuid.UUID:
    conv = Conversation(user_id=user_id, title="Kafka **or** [Pulsar](http://x.example)", agent="architecture-review",
                        created_at=START)
    first = AgentRun(user_id=user_id, conversation_id=conv.id, created_at=START + timedelta(minutes=1),
                     user_message="Should we adopt *Kafka*?\n# not a heading", output="Start with **one** topic.",
                     status="ok", provider="openai", model="gpt-4o-mini", input_tokens=1200, cached_input_tokens=200,
                     output_tokens=40, cost_usd=Decimal("0.000123"))
    replaced = AgentRun(user_id=user_id, conversation_id=conv.id, created_at=START + timedelta(minutes=2),
                        user_message="And the cost?", output="An answer the user regenerated.", status="ok",
                        provider="anthropic", model="claude-sonnet-4-5", input_tokens=900, output_tokens=12,
                        cost_usd=Decimal("1.5"))
    latest = AgentRun(user_id=user_id, conversation_id=conv.id, created_at=START + timedelta(minutes=3),
                      user_message="And the cost?", output="About $400 a month. ![chart](https://img.example/c.png)",
                      status="interrupted", error_code="cancelled", provider="anthropic", model="claude-sonnet-4-5",
                      input_tokens=950)
    replaced.superseded_by = latest.id
    with system_session() as s:
        s.add(conv)
        s.flush()
        s.add_all([first, replaced, latest])
    return conv.id


def test_a_conversation_exports_as_markdown_with_every_turn_and_version(any_db_url: str):
    user = make_user()
    conv = _seed(user)
    md = conversation_markdown(user_id=user, conversation_id=conv,
                               agent_titles={"architecture-review": "Architecture review"},
                               now=datetime(2026, 3, 5, tzinfo=UTC))
    lines = md.splitlines()
    # the title as typed: escaped, never a link or bold text
    assert lines[0] == r"# Kafka \*\*or\*\* \[Pulsar\](http\:\/\/x.example)"
    assert "- Advisor mode: Architecture review" in lines
    assert "- Started: 2026-03-04 09:30 UTC" in lines and "- Exported: 2026-03-05 00:00 UTC" in lines
    assert "- Turns: 2 (and 1 earlier version)" in lines
    # turn 1: time, the message as literal text in a quote, provider, model, tokens and cost, the answer
    assert "## Turn 1" in lines and "**You** · 2026-03-04 09:31 UTC" in lines
    assert "> Should we adopt \\*Kafka\\*?\\" in lines and r"> \# not a heading" in lines
    assert r"**Advisor** · openai · gpt-4o-mini · 1,400 in / 40 out tokens · \$0.000123" in lines
    assert "Start with **one** topic." in lines
    # turn 2: the earlier version first, marked as replaced, then the latest with its status
    earlier = lines.index("### Turn 2, earlier version 1 (replaced)")
    latest = lines.index("## Turn 2")
    assert earlier < lines.index("An answer the user regenerated.") < latest
    assert r"**Advisor** · anthropic · claude-sonnet-4-5 · 900 in / 12 out tokens · \$1.50" in lines
    assert r"_answer cut short (cancelled)_" in lines
    assert r"**Advisor** · anthropic · claude-sonnet-4-5 · 950 in / 0 out tokens · cost unknown" in lines
    # an image in an answer is a text link in the file, never embedded
    assert "![" not in md and "](<https://img.example/c.png>)" in md
    assert md.endswith("\n")


def test_another_users_conversation_is_not_exported(any_db_url: str):
    alice, mallory = make_user(), make_user()
    conv = _seed(alice)
    with pytest.raises(NotFound):
        conversation_markdown(user_id=mallory, conversation_id=conv)


def test_the_file_name_is_safe_and_dated():
    assert export_file_name("Kafka / Pulsar: ../../etc", START) == "kafka-pulsar-etc-20260304.md"
    assert export_file_name("数据 🚀", START) == "conversation-20260304.md"
