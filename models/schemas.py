"""Input models: every value a user can send is validated here, with explicit limits.

Pages and ``core`` functions take these models, never raw widget values. A bad value raises
``pydantic.ValidationError``; nothing else is ever raised. What a person reads about it comes from
``field_errors`` / ``error_lines``: one sentence per field, written for people, naming the limit
("Use at most 60 characters."), never pydantic's own phrasing.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import ErrorDetails

ROLES = ("CTO", "VP Engineering", "Engineering Manager", "Staff Engineer", "Developer", "Founder", "Product")
VERTICALS = ("SaaS", "E-commerce", "Fintech", "Health", "Devtools", "Marketplace", "Media", "Other")
STACK_SUGGESTIONS = (
    "React", "Next.js", "Vue", "TypeScript", "Node.js", "Python", "Django", "FastAPI", "Go", "Java",
    "Kotlin", "Swift", "Rust", "Ruby on Rails", "PostgreSQL", "MySQL", "MongoDB", "Redis", "Kafka",
    "Snowflake", "dbt", "Spark", "Kubernetes", "Terraform", "AWS", "GCP", "Azure", "iOS", "Android",
    "React Native", "Flutter",
)  # fmt: skip

MAX_ROLE = 60
MAX_VERTICAL = 60
MAX_STACK_ITEM = 40
MAX_STACK_ITEMS = 20
MAX_VIBE_NAME = 60
MAX_TITLE = 120
MAX_EMAIL = 254
MAX_PASSWORD = 256
MAX_FEEDBACK_COMMENT = 500
MAX_CHAT_CHARS = 100_000  # hard ceiling; the configured limit (settings.max_message_chars) is lower
MAX_SEARCH_CHARS = 200
MAX_SEARCH_TERMS = 8

# Bidirectional overrides/isolates and other invisible format characters that can disguise text.
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")


def _forbidden(ch: str, allow_newlines: bool) -> bool:
    if allow_newlines and ch in "\n\t":
        return False
    return unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn") or _BIDI.match(ch) is not None


def _no_control(value: str, *, allow_newlines: bool) -> str:
    # Each distinct character is looked at once (a pasted 8,000-character message has a few hundred),
    # not each position. The error names the first one in the text.
    bad = [ch for ch in set(value) if _forbidden(ch, allow_newlines)]
    if bad:
        first = min(bad, key=value.index)
        raise ValueError(f"Remove the control or invisible character U+{ord(first):04X}.")
    return value


def clean_line(value: str) -> str:
    """A single-line label: NFC-normalised, trimmed, no control/bidi characters."""
    value = unicodedata.normalize("NFC", value).strip()
    return _no_control(value, allow_newlines=False)


def clean_text(value: str) -> str:
    """Multi-line text (a chat message): newlines and tabs allowed, other control characters not."""
    value = unicodedata.normalize("NFC", value)
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return _no_control(value, allow_newlines=True)


Line = Annotated[str, AfterValidator(clean_line)]
StackItem = Annotated[Line, Field(min_length=1, max_length=MAX_STACK_ITEM)]
Money = Annotated[Decimal, Field(ge=0, le=1_000_000, max_digits=12, decimal_places=4)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


def _email_address(value: str) -> str:
    value = clean_line(value).lower()
    if not _EMAIL.match(value):
        raise ValueError(f"Enter an email address like name@example.com (at most {MAX_EMAIL} characters).")
    return value


Email = Annotated[str, Field(max_length=MAX_EMAIL), AfterValidator(_email_address)]
# A new password has no minimum here: the password rules (``core.accounts.check_password_rules``)
# say how long it must be, and its second typing must equal it. A password typed to prove who you
# are is required.
Password = Annotated[str, Field(max_length=MAX_PASSWORD)]
RequiredPassword = Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD)]
_DIFFERENT_PASSWORDS = "The two passwords differ: type the same password twice."


class EmailIn(_In):
    """An email address typed to name an account (an admin's lookup, a confirmation)."""

    email: Email


class SignUpIn(_In):
    email: Email
    password: Password
    confirm_password: Password | None = None  # the form's second typing (None: not asked)

    @field_validator("confirm_password")
    @classmethod
    def _same(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and "password" in info.data and value != info.data["password"]:
            raise ValueError(_DIFFERENT_PASSWORDS)
        return value


class SignInIn(_In):
    email: Email
    password: RequiredPassword


class NewPasswordIn(_In):
    """A new password, typed twice (after an admin's reset, and within ``ChangePasswordIn``)."""

    new_password: Password
    confirm_password: Password

    @field_validator("confirm_password")
    @classmethod
    def _same(cls, value: str, info: ValidationInfo) -> str:
        if "new_password" in info.data and value != info.data["new_password"]:
            raise ValueError(_DIFFERENT_PASSWORDS)
        return value


class ChangePasswordIn(NewPasswordIn):
    """A signed-in user's password change: the current password, and the new one twice."""

    current_password: RequiredPassword


class ProfileIn(_In):
    role: Annotated[Line, Field(max_length=MAX_ROLE)] = ""
    stack: Annotated[list[StackItem], Field(max_length=MAX_STACK_ITEMS)] = []
    vertical: Annotated[Line, Field(max_length=MAX_VERTICAL)] = ""

    @field_validator("role")
    @classmethod
    def _role(cls, value: str) -> str:
        if not value:
            raise ValueError(f"Choose a role, or describe yours under 'Other' (at most {MAX_ROLE} characters).")
        return value

    @field_validator("stack")
    @classmethod
    def _stack(cls, value: list[str]) -> list[str]:
        seen: set[str] = set()
        out: list[str] = []
        for item in value:
            key = item.casefold()
            if key not in seen:
                seen.add(key)
                out.append(item)
        return out


Slider = Annotated[int, Field(ge=0, le=10)]


class VibeIn(_In):
    name: Annotated[Line, Field(min_length=1, max_length=MAX_VIBE_NAME)] = "Default"
    playfulness: Slider = 3
    revenue_focus: Slider = 5
    technical_depth: Slider = 6
    brevity: Slider = 5
    formality: Slider = 5

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value:
            raise ValueError(f"Give this vibe a name of 1 to {MAX_VIBE_NAME} characters.")
        return value

    def sliders(self) -> dict[str, int]:
        return {
            "playfulness": self.playfulness,
            "revenue_focus": self.revenue_focus,
            "technical_depth": self.technical_depth,
            "brevity": self.brevity,
            "formality": self.formality,
        }


class ConversationIn(_In):
    title: Annotated[Line, Field(min_length=1, max_length=MAX_TITLE)] = "New conversation"
    agent: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")] = "general"


class RenameIn(_In):
    conversation_id: uuid.UUID
    title: Annotated[Line, Field(min_length=1, max_length=MAX_TITLE)]


class ChatIn(_In):
    conversation_id: uuid.UUID
    text: Annotated[str, AfterValidator(clean_text), Field(max_length=MAX_CHAT_CHARS)]

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("Type a message first.")
        return value


class FeedbackIn(_In):
    """A user's judgement of one answer: thumbs up (1) or down (-1), or none (cleared), and an
    optional short comment (blank means none)."""

    run_id: uuid.UUID
    rating: Literal[-1, 1] | None
    comment: Annotated[str, AfterValidator(clean_text), Field(max_length=MAX_FEEDBACK_COMMENT)] = ""

    @field_validator("comment")
    @classmethod
    def _trimmed(cls, value: str) -> str:
        return value.strip()


_SEARCH_WORD = re.compile(r"[^\W_]+")  # letters and digits: what both search indexes see as words


def clean_search(value: str) -> str:
    """A search box's text: one line holding at least one word."""
    value = clean_line(value)
    if not _SEARCH_WORD.search(value):
        raise ValueError(f"Type a word to search for: letters or digits (at most {MAX_SEARCH_CHARS} characters).")
    return value


class SearchIn(_In):
    """What to look for in the user's conversations: every word must appear (in any form of it)."""

    query: Annotated[str, Field(max_length=MAX_SEARCH_CHARS), AfterValidator(clean_search)]

    @property
    def terms(self) -> tuple[str, ...]:
        """The query's words, lower-cased, each once, at most ``MAX_SEARCH_TERMS`` (the rest ignored)."""
        return tuple(dict.fromkeys(w.lower() for w in _SEARCH_WORD.findall(self.query)))[:MAX_SEARCH_TERMS]


class QuotaOverrideIn(_In):
    user_id: uuid.UUID
    tokens_per_day: Annotated[int, Field(ge=0, le=10_000_000_000)] | None = None
    cost_per_month_usd: Money | None = None




# ------------------------------------------------------------------------------------------------
# what a person reads about a refused value
# ------------------------------------------------------------------------------------------------
# Names of fields as a person knows them, for messages that are not shown next to their field.
FIELD_LABELS = {
    "email": "Email", "password": "Password", "current_password": "Current password",
    "new_password": "New password", "confirm_password": "Repeat the new password", "role": "Role",
    "stack": "Stack", "vertical": "Vertical", "name": "Name", "playfulness": "Playfulness",
    "revenue_focus": "Revenue focus", "technical_depth": "Technical depth", "brevity": "Brevity",
    "formality": "Formality", "title": "Title", "agent": "Advisor mode", "text": "Message",
    "tokens_per_day": "Tokens per day", "cost_per_month_usd": "USD per month", "query": "Search",
}  # fmt: skip


@dataclass(frozen=True)
class _Limits:
    """A field's limits, as its model's JSON schema states them."""

    kind: str  # "text", "list", "integer", "number" or "other"
    min_length: int | None = None
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    item: _Limits | None = None  # a list's entries


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _limits_of(schema: dict[str, Any]) -> _Limits:
    options = [o for o in schema.get("anyOf", [schema]) if o.get("type") != "null"]
    typed = next((o for o in options if o.get("type") in ("integer", "number", "array")), None)
    s = typed or (options[0] if options else schema)
    kind = {"string": "text", "array": "list", "integer": "integer", "number": "number"}.get(
        str(s.get("type")), "other"
    )
    if kind == "list":
        return _Limits(kind, _int(s.get("minItems")), _int(s.get("maxItems")),
                       item=_limits_of(s["items"]) if isinstance(s.get("items"), dict) else None)
    return _Limits(kind, _int(s.get("minLength")), _int(s.get("maxLength")),
                   _number(s.get("minimum")), _number(s.get("maximum")))


@cache
def _model_limits(model: type[BaseModel]) -> dict[str, _Limits]:
    properties = model.model_json_schema().get("properties", {})
    return {name: _limits_of(spec) for name, spec in properties.items() if isinstance(spec, dict)}


def _models_by_name() -> dict[str, type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {}
    pending: list[type[BaseModel]] = [_In]
    while pending:
        model = pending.pop()
        found[model.__name__] = model
        pending.extend(model.__subclasses__())
    return found


def _fmt(value: float) -> str:
    return f"{int(value):,}" if value == int(value) else f"{value:,}"


def _range(limits: _Limits) -> str:
    low, high = limits.minimum, limits.maximum
    if low is not None and high is not None:
        return f"from {_fmt(low)} to {_fmt(high)}"
    if low is not None:
        return f"of at least {_fmt(low)}"
    return f"of at most {_fmt(high)}" if high is not None else ""


def _length_message(err: ErrorDetails, limits: _Limits) -> str:
    ctx = err.get("ctx") or {}
    shortest = _int(ctx.get("min_length")) or limits.min_length or 1
    longest = _int(ctx.get("max_length")) or limits.max_length
    is_list = limits.kind == "list" and not isinstance(err.get("input"), str)
    if err["type"] in ("too_long", "string_too_long") and longest is not None:
        return f"Choose at most {longest:,} entries." if is_list else f"Use at most {longest:,} characters."
    if is_list:
        return f"Choose at least {shortest:,} entries."
    if longest is None:
        return f"Enter at least {shortest:,} character{'s' if shortest != 1 else ''}."
    return f"Enter {shortest:,} to {longest:,} characters."


def _type_message(limits: _Limits) -> str:
    bounds = _range(limits)
    if limits.kind == "integer":
        return f"Enter a whole number {bounds}." if bounds else "Enter a whole number."
    if limits.kind == "number":
        return f"Enter an amount {bounds}." if bounds else "Enter an amount."
    if limits.kind == "list":
        most = f"at most {limits.max_length:,} " if limits.max_length is not None else ""
        return f"Choose {most}entries from the list, or type your own."
    if limits.kind == "text" and limits.max_length is not None:
        return f"Enter text of at most {limits.max_length:,} characters."
    return "Enter a valid value."


def _message(err: ErrorDetails, limits: _Limits) -> str:
    kind = err["type"]
    if kind == "value_error":
        return str((err.get("ctx") or {}).get("error", "")) or _type_message(limits)
    if kind in ("too_long", "string_too_long", "too_short", "string_too_short"):
        return _length_message(err, limits)
    if kind == "missing":
        return _length_message({**err, "type": "too_short"}, limits) if limits.kind == "text" else (
            _type_message(limits))
    if kind == "string_pattern_mismatch":
        most = f" (at most {limits.max_length:,} characters)" if limits.max_length is not None else ""
        return f"Use only lower-case letters, digits, hyphens and underscores{most}."
    if kind.startswith("decimal_max_places"):
        places = (err.get("ctx") or {}).get("decimal_places", 4)
        return f"Use at most {places} decimals."
    if kind == "extra_forbidden":
        return "This value is not expected here."
    if kind.startswith("uuid"):
        return "This reference is not valid (expected a 36-character id). Reload the page."
    return _type_message(limits)


def _field_limits(exc: ValidationError, loc: tuple[int | str, ...]) -> _Limits:
    model = _models_by_name().get(exc.title)
    limits = _model_limits(model).get(str(loc[0])) if model is not None and loc else None
    if limits is None:
        return _Limits("other")
    if len(loc) > 1 and isinstance(loc[1], int) and limits.item is not None:
        return limits.item
    return limits


def _human(exc: ValidationError) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        message = _message(err, _field_limits(exc, loc))
        if len(loc) > 1 and isinstance(loc[1], int):
            message = f"Each entry: {message[0].lower()}{message[1:]}"
        out.append((str(loc[0]) if loc else "", message))
    return out


def field_errors(exc: Exception) -> dict[str, str]:
    """``{field: message}`` for showing next to form fields (the first problem of each field): each
    message is a sentence for people that names the field's limit ("Use at most 60 characters.")."""
    if not isinstance(exc, ValidationError):
        return {"": "This value cannot be used. Check it and try again."}
    out: dict[str, str] = {}
    for field, message in _human(exc):
        out.setdefault(field, message)
    return out


def error_lines(exc: Exception) -> list[str]:
    """The messages of ``field_errors``, each led by its field's name ("Role: Use at most 60
    characters."), for where they are not shown beside their field."""
    return [
        f"{FIELD_LABELS.get(field, field.replace('_', ' ').capitalize())}: {message}" if field else message
        for field, message in field_errors(exc).items()
    ]
