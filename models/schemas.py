"""Input models: every value a user can send is validated here, with explicit limits.

Pages and ``core`` functions take these models, never raw widget values. A bad value raises
``pydantic.ValidationError`` whose message names the field; nothing else is ever raised.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

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
    # not each position: 1.5 ms → a few tens of µs. The error names the first one in the text.
    bad = [ch for ch in set(value) if _forbidden(ch, allow_newlines)]
    if bad:
        first = min(bad, key=value.index)
        raise ValueError(f"contains a control or invisible character (U+{ord(first):04X})")
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


class SignUpIn(_In):
    email: Annotated[str, Field(min_length=3, max_length=MAX_EMAIL)]
    password: Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD)]

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        value = clean_line(value).lower()
        if not _EMAIL.match(value):
            raise ValueError("is not a valid email address")
        return value


class SignInIn(SignUpIn):
    pass


class ProfileIn(_In):
    role: Annotated[Line, Field(max_length=MAX_ROLE)] = ""
    stack: Annotated[list[StackItem], Field(max_length=MAX_STACK_ITEMS)] = []
    vertical: Annotated[Line, Field(max_length=MAX_VERTICAL)] = ""

    @field_validator("role")
    @classmethod
    def _role(cls, value: str) -> str:
        if not value:
            raise ValueError("choose a role, or describe yours under 'Other'")
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
            raise ValueError("give this vibe a name")
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
            raise ValueError("type a message first")
        return value


_SEARCH_WORD = re.compile(r"[^\W_]+")  # letters and digits: what both search indexes see as words


def clean_search(value: str) -> str:
    """A search box's text: one line of at most ``MAX_SEARCH_CHARS`` holding at least one word."""
    if len(value) > MAX_SEARCH_CHARS:
        raise ValueError(f"Search for at most {MAX_SEARCH_CHARS} characters (this is {len(value):,}).")
    value = clean_line(value)
    if not _SEARCH_WORD.search(value):
        raise ValueError("Type a word to search for: letters or digits.")
    return value


class SearchIn(_In):
    """What to look for in the user's conversations: every word must appear (in any form of it)."""

    query: Annotated[str, AfterValidator(clean_search)]

    @property
    def terms(self) -> tuple[str, ...]:
        """The query's words, lower-cased, each once, at most ``MAX_SEARCH_TERMS`` (the rest ignored)."""
        return tuple(dict.fromkeys(w.lower() for w in _SEARCH_WORD.findall(self.query)))[:MAX_SEARCH_TERMS]


class QuotaOverrideIn(_In):
    user_id: uuid.UUID
    tokens_per_day: Annotated[int, Field(ge=0, le=10_000_000_000)] | None = None
    cost_per_month_usd: Money | None = None


def field_errors(exc: Exception) -> dict[str, str]:
    """Map a ValidationError to {field: readable message} for showing next to form fields."""
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError):
        return {"": str(exc)}
    out: dict[str, str] = {}
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else ""
        msg = err["msg"].removeprefix("Value error, ")
        out.setdefault(field, msg)
    return out
