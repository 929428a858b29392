"""One conversation as a Markdown document: what a user takes away to read, share or archive.

``conversation_markdown`` reads the conversation and every run of it (earlier versions included,
marked as replaced) in the user's own session, and writes:

- the title (as typed: escaped, never markup), the advisor mode, when it started, the export time;
- each turn in order: its time (UTC), the user's message as literal text, then the answer with its
  provider, model, tokens and cost (``core.pricing.format_cost``), and its status when it did not
  complete. Answers go through ``core.safe_markdown.export_markdown``: the same rules as the page,
  and no image is embedded (an image becomes a text link).

The whole account's archive (every table, machine-readable) is ``core.export``; this is one
conversation for people.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

from sqlmodel import col, select

from core.conversations import get_conversation
from core.db import user_session
from core.markdown_escape import escape_inline, literal_markdown
from core.pricing import format_cost
from core.run_versions import group_versions
from core.safe_markdown import export_markdown
from models import AgentRun, Conversation

__all__ = ["answer_markdown_text", "conversation_markdown", "export_file_name"]

_STATUS_NOTE = {
    "pending": "answer in progress when exported",
    "error": "no answer",
    "interrupted": "answer cut short",
}


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _meta(run: AgentRun) -> str:
    """provider · model · tokens · cost, as the chat's meta line states them (as Markdown)."""
    if run.provider is None:
        return "no provider answered"
    parts = [escape_inline(run.provider), escape_inline(run.model or "?")]
    if run.input_tokens is not None or run.output_tokens is not None:
        tokens_in = (run.input_tokens or 0) + (run.cached_input_tokens or 0) + (run.cache_write_tokens or 0)
        parts.append(f"{tokens_in:,} in / {run.output_tokens or 0:,} out tokens")
    parts.append(escape_inline(format_cost(run.cost_usd)))
    return " · ".join(parts)


def answer_markdown_text(output: str) -> str:
    """An answer as Markdown for a file or the clipboard (``export_markdown``: no image embedded)."""
    return export_markdown(output)


def _quote(text: str) -> str:
    """The user's message as a block quote of literal text."""
    return "\n".join(f"> {line}" if line else ">" for line in literal_markdown(text).split("\n"))


def _run_section(run: AgentRun, heading: str) -> list[str]:
    lines = [heading, "", f"**You** · {_when(run.created_at)}", "", _quote(run.user_message), ""]
    lines += [f"**Advisor** · {_meta(run)}", ""]
    note = _STATUS_NOTE.get(run.status)
    if note is not None:
        code = f" ({run.error_code})" if run.error_code else ""
        lines += [f"_{note}{escape_inline(code)}_", ""]
    if run.output:
        lines += [answer_markdown_text(run.output), ""]
    return lines


def _document(conv: Conversation, runs: list[AgentRun], mode: str, now: datetime) -> str:
    turns = group_versions(runs)
    replaced = sum(len(t.earlier) for t in turns)
    lines = [f"# {literal_markdown(conv.title)}", ""]
    lines += [f"- Advisor mode: {literal_markdown(mode)}", f"- Started: {_when(conv.created_at)}",
              f"- Exported: {_when(now)}", f"- Turns: {len(turns)}"
              + (f" (and {replaced} earlier version{'s' if replaced != 1 else ''})" if replaced else ""), ""]
    for number, turn in enumerate(turns, start=1):
        lines += ["---", ""]
        for version, run in enumerate(turn.earlier, start=1):
            lines += _run_section(run, f"### Turn {number}, earlier version {version} (replaced)")
        lines += _run_section(turn.run, f"## Turn {number}")
    return "\n".join(lines).rstrip("\n") + "\n"


def conversation_markdown(
    *,
    user_id: uuid.UUID,
    conversation_id: uuid.UUID,
    agent_titles: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> str:
    """The conversation as Markdown (see the module docstring); ``NotFound`` if it is not the user's.

    ``agent_titles`` names the advisor modes (id → title); an unknown id is shown as it is.
    """
    conv = get_conversation(user_id=user_id, conversation_id=conversation_id)
    with user_session(user_id) as s:
        runs = list(s.exec(
            select(AgentRun)
            .where(col(AgentRun.user_id) == user_id, col(AgentRun.conversation_id) == conversation_id)
            .order_by(col(AgentRun.created_at), col(AgentRun.id))
        ).all())
    mode = (agent_titles or {}).get(conv.agent, conv.agent)
    return _document(conv, runs, mode, now or datetime.now(UTC))


def export_file_name(title: str, at: datetime) -> str:
    """A safe file name for the download: the title's letters and digits, and the date."""
    stem = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-").lower()[:60] or "conversation"
    return f"{stem}-{at.astimezone(UTC):%Y%m%d}.md"
