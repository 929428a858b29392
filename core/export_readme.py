"""README.txt of the export: what each file of the archive holds and what each field means."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from core.user_tables import OwnedTable

__all__ = ["FIELD_DOCS", "readme_text"]

FIELD_DOCS: Final[dict[str, dict[str, str]]] = {
    "users": {
        "id": "your account id (a UUID); every other file refers to you by it as user_id",
        "email": "your sign-in email address (stored lower-cased)",
        "auth_provider": "how you sign in: local (email + password) or oidc (single sign-on)",
        "oidc_subject": "your identifier at the single sign-on provider (empty for local accounts)",
        "is_admin": "whether you are an administrator of this Advisor installation",
        "created_at": "when your account was created (UTC, ISO 8601)",
        "quota_tokens_per_day": "a personal daily token quota set by an administrator (empty: the default)",
        "quota_cost_per_month_usd": "a personal monthly cost quota in USD (empty: the default)",
        "password_reset_required": "true while an administrator's password reset is pending: your "
        "password does not sign in until you set a new one with the one-time code you were given",
    },
    "user_profiles": {
        "user_id": "your account id",
        "role": "the role you gave (e.g. CTO)",
        "stack": "the technologies you listed (a JSON list)",
        "vertical": "your industry vertical",
        "updated_at": "when you last changed the profile (UTC)",
    },
    "vibe_configs": {
        "id": "the vibe's id",
        "user_id": "your account id",
        "name": "the name you gave the vibe",
        "playfulness": "slider 0-10",
        "revenue_focus": "slider 0-10",
        "technical_depth": "slider 0-10",
        "brevity": "slider 0-10",
        "formality": "slider 0-10",
        "is_active": "whether this is the vibe used for new answers",
        "updated_at": "when the vibe was last changed (UTC)",
    },
    "conversations": {
        "id": "the conversation's id; agent runs refer to it as conversation_id",
        "user_id": "your account id",
        "title": "the conversation's title",
        "agent": "the advisor mode chosen for it",
        "created_at": "when it was started (UTC)",
    },
    "agent_runs": {
        "id": "the run's id (one question and its answer)",
        "user_id": "your account id",
        "conversation_id": "the conversation this turn belongs to",
        "agent": "the advisor mode that answered",
        "created_at": "when you sent the message (UTC)",
        "user_message": "the message you sent, exactly as stored",
        "output": "the answer shown to you (partial if the run was interrupted)",
        "status": "pending, ok, error or interrupted",
        "provider": "the LLM provider that answered (openai, anthropic, demo)",
        "model": "the model that answered",
        "fallback_from": "the provider/model tried first when a fallback happened",
        "input_tokens": "tokens sent to the model",
        "output_tokens": "tokens the model produced",
        "cached_input_tokens": "input tokens served from the provider's prompt cache",
        "cache_write_tokens": "input tokens written to the provider's prompt cache",
        "cost_usd": "the computed cost in USD, a decimal string (empty when the model's price is unknown)",
        "ttft_ms": "milliseconds until the first token arrived",
        "latency_ms": "milliseconds until the answer was complete",
        "prompt_sha256": "sha256 of the system prompt used (traces the answer to its prompt)",
        "atom_versions": "the prompt atoms used, as a JSON list of [id, version]",
        "request_id": "the reference shown with errors and written in our logs",
        "error_code": "the error category when the run failed",
        "superseded_by": "the run that replaced this one when you edited or regenerated it (empty for the latest)",
        "feedback": "your rating of the answer: 1 thumbs up, -1 thumbs down (empty if none)",
        "feedback_comment": "the comment you left with your rating",
        "feedback_at": "when you rated the answer (UTC)",
        "heartbeat_at": "the last sign of life of the process answering (while the answer was live)",
    },
    "usage_counters": {
        "user_id": "your account id",
        "day": "a UTC day (YYYY-MM-DD) on which you sent messages",
        "tokens": "tokens used by the runs of that day (input, cached input, cache writes and output); "
        "your daily token quota is checked against it",
        "cost_usd": "cost in USD of the runs of that day, a decimal string; your monthly cost quota is "
        "checked against the sum of the month's days",
    },
    "signin_addresses": {
        "user_id": "your account id",
        "address_hash": "a keyed one-way hash of a network address you signed in from (the address "
        "itself is not stored); sign-in attempts from it are not refused when others guess at your "
        "account from elsewhere",
        "last_seen": "your last successful sign-in from that address (UTC); forgotten after "
        "ADVISOR_SIGNIN_KNOWN_ADDRESS_DAYS days",
    },
    "user_sessions": {
        "id": "the session's id",
        "user_id": "your account id",
        "token_hash": "the SHA-256 of the random token your browser holds in a cookie while you are "
        "signed in (the token itself is not stored, and cannot be derived from this hash)",
        "created_at": "when you signed in on that browser (UTC)",
        "last_seen_at": "when that browser last used the session (UTC, to within a minute)",
        "expires_at": "when the session ends unless used again (UTC); each use moves it to "
        "ADVISOR_SESSION_DAYS days later. Signing out deletes the session at once",
        "user_agent": "how that browser described itself (trimmed), so you can tell your sessions apart",
    },
    "password_resets": {
        "id": "the code's id",
        "user_id": "your account id",
        "code_hash": "the SHA-256 of a one-time code an administrator issued to reset your password "
        "(the code itself is not stored); it is deleted once used",
        "created_at": "when the administrator issued the code (UTC)",
        "expires_at": "when the code stops working (UTC)",
    },
}

_README_HEAD = """\
Advisor — export of your data
=============================

This archive holds every row that Advisor stores about you, read in one consistent snapshot of the
database at the time given in manifest.json ("exported_at", UTC). Text files are UTF-8. Timestamps
are UTC in ISO 8601. Ids are UUIDs. Decimal amounts are decimal strings (exact, never rounded).

Left out on purpose: users.password_hash, the one-way hash of your password (a secret used to check
your password, not information about you). Nothing else is left out.

Files
-----
profile.json        your account row ("user", from the table users) and your profile ("profile",
                    from user_profiles; null if you never filled it in)
vibe_configs.json   your vibes (output-style presets), a JSON array, one object per vibe
conversations.json  your conversations, a JSON array, one object per conversation
agent_runs.jsonl    every chat turn: your message, the answer and how it was produced; JSON Lines
                    (one JSON object per line), oldest first
agent_runs.csv      the same rows as agent_runs.jsonl as a spreadsheet: CSV (RFC 4180, comma separated,
                    double-quote quoting, CRLF line ends, first line = column names, no byte order
                    mark). Empty cell = no value (null) or empty text (agent_runs.jsonl tells the two
                    apart); true/false for yes/no; JSON lists as JSON text. A text cell that
                    begins with =, +, -, @, a tab or a carriage return is written with an apostrophe
                    (') in front, so that a spreadsheet shows it as text instead of running it as a
                    formula; agent_runs.jsonl holds the exact text.
extra/<table>.jsonl any other table holding rows of yours (JSON Lines), e.g. extra/usage_counters.jsonl:
                    your usage per UTC day, kept for your quotas, extra/signin_addresses.jsonl:
                    hashes of the addresses you signed in from, extra/user_sessions.jsonl:
                    the browsers where you are signed in, and extra/password_resets.jsonl: the
                    hash of the one-time code of an administrator's password reset, while one is pending
README.txt          this file
manifest.json       format and schema version, export time, number of rows per table, and for each
                    file its size in bytes, its number of rows and its SHA-256 (to check the archive
                    is complete: e.g. `sha256sum agent_runs.csv`)

Large files are stored with ZIP64 extensions; any current unzip tool reads them.

Fields
------
"""


def readme_text(catalogue: Iterable[OwnedTable]) -> str:
    """README.txt: every file, and every field of every exported table."""
    lines = [_README_HEAD]
    for t in catalogue:
        docs = FIELD_DOCS.get(t.name, {})
        lines.append(f"{t.name}\n")
        for name in t.column_names:
            lines.append(f"  {name}: {docs.get(name, '(no description yet)')}\n")
        lines.append("\n")
    return "".join(lines)
