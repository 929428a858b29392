"""Input models: any value gives a model or a ValidationError naming the field, never a crash (C6)."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from models.schemas import (
    MAX_FEEDBACK_COMMENT,
    MAX_ROLE,
    MAX_STACK_ITEMS,
    ChangePasswordIn,
    ChatIn,
    ConversationIn,
    EmailIn,
    FeedbackIn,
    NewPasswordIn,
    ProfileIn,
    QuotaOverrideIn,
    RenameIn,
    SearchIn,
    SignInIn,
    SignUpIn,
    VibeIn,
    error_lines,
    field_errors,
)

RAW_PHRASES = ("should have", "validation", "string should", "value should", "input should", "value error")
anything = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=300),
    st.binary(max_size=50), st.lists(st.text(max_size=60), max_size=30),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)
MODELS = {
    SignUpIn: ["email", "password", "confirm_password"],
    SignInIn: ["email", "password"],
    EmailIn: ["email"],
    NewPasswordIn: ["new_password", "confirm_password"],
    ChangePasswordIn: ["current_password", "new_password", "confirm_password"],
    ProfileIn: ["role", "stack", "vertical"],
    VibeIn: ["name", "playfulness", "revenue_focus", "technical_depth", "brevity", "formality"],
    ConversationIn: ["title", "agent"],
    RenameIn: ["conversation_id", "title"],
    ChatIn: ["conversation_id", "text"],
    QuotaOverrideIn: ["user_id", "tokens_per_day", "cost_per_month_usd"],
    FeedbackIn: ["run_id", "rating", "comment"],
    SearchIn: ["query"],
}


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_fuzz_every_input_model_only_raises_validation_error(data):
    model = data.draw(st.sampled_from(list(MODELS)))
    values = {f: data.draw(anything, label=f) for f in MODELS[model] if data.draw(st.booleans())}
    try:
        model(**values)
    except ValidationError as exc:
        errors = field_errors(exc)
        assert errors and all(isinstance(k, str) and v for k, v in errors.items())
        for message in errors.values():
            assert not any(p in message.lower() for p in RAW_PHRASES), message


@pytest.mark.parametrize(
    ("model", "values", "field"),
    [
        (ProfileIn, {"role": "x" * (MAX_ROLE + 1)}, "role"),
        (ProfileIn, {"role": ""}, "role"),
        (ProfileIn, {"role": "CTO", "stack": ["a"] * (MAX_STACK_ITEMS + 1)}, "stack"),
        (ProfileIn, {"role": "CTO", "stack": ["x" * 41]}, "stack"),
        (ProfileIn, {"role": "CTO", "vertical": "Fin\u202etech"}, "vertical"),
        (ProfileIn, {"role": "CTO\x00"}, "role"),
        (VibeIn, {"playfulness": 11}, "playfulness"),
        (VibeIn, {"brevity": -1}, "brevity"),
        (VibeIn, {"name": " "}, "name"),
        (ChatIn, {"conversation_id": uuid.uuid4(), "text": "   \n "}, "text"),
        (ChatIn, {"conversation_id": uuid.uuid4(), "text": "hi\x07"}, "text"),
        (ChatIn, {"conversation_id": uuid.uuid4(), "text": "x" * 100_001}, "text"),
        (SignUpIn, {"email": "not-an-email", "password": "x"}, "email"),
        (ConversationIn, {"agent": "../etc"}, "agent"),
        (FeedbackIn, {"run_id": uuid.uuid4(), "rating": 0}, "rating"),
        (FeedbackIn, {"run_id": uuid.uuid4(), "rating": 1, "comment": "x" * (MAX_FEEDBACK_COMMENT + 1)}, "comment"),
        (FeedbackIn, {"run_id": uuid.uuid4(), "rating": -1, "comment": "a\u202eb"}, "comment"),
        (SearchIn, {"query": "   "}, "query"),
        (SearchIn, {"query": "?!"}, "query"),
        (SearchIn, {"query": "x" * 201}, "query"),
        (SearchIn, {"query": "a\u202eb"}, "query"),
    ],
)
def test_bad_values_are_rejected_naming_the_field(model, values, field):
    with pytest.raises(ValidationError) as info:
        model(**values)
    assert field in field_errors(info.value)


def test_good_values_are_normalised():
    p = ProfileIn(role=" CTO ", stack=["React", "react", "Go"], vertical="SaaS")
    assert p.role == "CTO" and p.stack == ["React", "Go"]
    assert SignUpIn(email="Ann@Example.COM", password="x").email == "ann@example.com"
    assert ChatIn(conversation_id=uuid.uuid4(), text="a\r\nb\tc").text == "a\nb\tc"


def _reference_no_control(value: str, allow_newlines: bool) -> str | None:
    """Position by position, as the check was first written: the first forbidden character, if any."""
    import unicodedata

    for ch in value:
        if allow_newlines and ch in "\n\t":
            continue
        if unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn") or ch in BIDI_CHARS:
            return ch
    return None


BIDI_CHARS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(codec=None), max_size=80), st.booleans())
def test_control_check_names_the_first_forbidden_character(value: str, allow_newlines: bool):
    from models.schemas import _no_control

    expected = _reference_no_control(value, allow_newlines)
    if expected is None:
        assert _no_control(value, allow_newlines=allow_newlines) == value
    else:
        with pytest.raises(ValueError, match=f"U\\+{ord(expected):04X}"):
            _no_control(value, allow_newlines=allow_newlines)


def test_control_check_reports_in_text_order():
    from models.schemas import _no_control

    for text in ("ok \x01 then \u202e", "ok \u202e then \x01", "\x7f" + "a" * 5000 + "\x01"):
        first = next(ch for ch in text if ch in "\x01\x7f\u202e")
        with pytest.raises(ValueError, match=f"U\\+{ord(first):04X}"):
            _no_control(text, allow_newlines=True)


# Every field of every input model: a value too long (or too large), an empty one and one of the
# wrong type. The message is for people (none of pydantic's phrasing) and names the limit.
_ID = uuid.uuid4()
_SLIDER_VALUES: tuple[object, ...] = (11, -1, "high", None, 2.5)
LIMIT_CASES: list[tuple[type, dict[str, object], str, str]] = [
    (VibeIn, {slider: value}, slider, "from 0 to 10")
    for slider in ("playfulness", "revenue_focus", "technical_depth", "brevity", "formality")
    for value in _SLIDER_VALUES
]
LIMIT_CASES += [
    # (model, values, field, words the message must hold)
    (SignUpIn, {"email": "x" * 300 + "@example.com", "password": "p"}, "email", "at most 254 characters"),
    (SignUpIn, {"email": "", "password": "p"}, "email", "at most 254 characters"),
    (SignUpIn, {"email": 12345, "password": "p"}, "email", "at most 254 characters"),
    (SignUpIn, {"email": "a@example.com", "password": "p" * 257}, "password", "at most 256 characters"),
    (SignUpIn, {"email": "a@example.com", "password": ["p"]}, "password", "at most 256 characters"),
    (SignUpIn, {"email": "a@example.com", "password": "p", "confirm_password": "p" * 257}, "confirm_password",
     "at most 256 characters"),
    (SignUpIn, {"email": "a@example.com", "password": "p", "confirm_password": ""}, "confirm_password",
     "same password twice"),
    (SignInIn, {"email": "a@example.com", "password": ""}, "password", "1 to 256 characters"),
    (SignInIn, {"email": "a@example.com", "password": "p" * 10_000}, "password", "at most 256 characters"),
    (ChangePasswordIn, {"current_password": "", "new_password": "n", "confirm_password": "n"}, "current_password",
     "1 to 256 characters"),
    (ChangePasswordIn, {"current_password": "c", "new_password": "n" * 300, "confirm_password": "n"}, "new_password",
     "at most 256 characters"),
    (ChangePasswordIn, {"current_password": "c", "new_password": 5, "confirm_password": "n"}, "new_password",
     "at most 256 characters"),
    (ProfileIn, {"role": "x" * 80}, "role", "at most 60 characters"),
    (ProfileIn, {"role": ""}, "role", "at most 60 characters"),
    (ProfileIn, {"role": 7}, "role", "at most 60 characters"),
    (ProfileIn, {"role": "CTO", "vertical": "v" * 80}, "vertical", "at most 60 characters"),
    (ProfileIn, {"role": "CTO", "vertical": None}, "vertical", "at most 60 characters"),
    (ProfileIn, {"role": "CTO", "stack": ["s"] * 21}, "stack", "at most 20 entries"),
    (ProfileIn, {"role": "CTO", "stack": ["s" * 41]}, "stack", "at most 40 characters"),
    (ProfileIn, {"role": "CTO", "stack": [""]}, "stack", "1 to 40 characters"),
    (ProfileIn, {"role": "CTO", "stack": "Python"}, "stack", "at most 20 entries"),
    (VibeIn, {"name": "n" * 61}, "name", "at most 60 characters"),
    (VibeIn, {"name": ""}, "name", "1 to 60 characters"),
    (VibeIn, {"name": 3}, "name", "at most 60 characters"),
    (ConversationIn, {"title": "t" * 121}, "title", "at most 120 characters"),
    (ConversationIn, {"title": ""}, "title", "1 to 120 characters"),
    (ConversationIn, {"agent": "a" * 65}, "agent", "at most 64 characters"),
    (ConversationIn, {"agent": ""}, "agent", "1 to 64 characters"),
    (ConversationIn, {"agent": "../x"}, "agent", "at most 64 characters"),
    (RenameIn, {"conversation_id": _ID, "title": "t" * 121}, "title", "at most 120 characters"),
    (RenameIn, {"conversation_id": _ID, "title": ""}, "title", "1 to 120 characters"),
    (RenameIn, {"conversation_id": _ID, "title": {"a": 1}}, "title", "at most 120 characters"),
    (ChatIn, {"conversation_id": _ID, "text": "m" * 100_001}, "text", "at most 100,000 characters"),
    (ChatIn, {"conversation_id": _ID, "text": 5}, "text", "at most 100,000 characters"),
    (QuotaOverrideIn, {"user_id": _ID, "tokens_per_day": 10**11}, "tokens_per_day", "from 0 to 10,000,000,000"),
    (QuotaOverrideIn, {"user_id": _ID, "tokens_per_day": -1}, "tokens_per_day", "from 0 to 10,000,000,000"),
    (QuotaOverrideIn, {"user_id": _ID, "tokens_per_day": "many"}, "tokens_per_day", "from 0 to 10,000,000,000"),
    (QuotaOverrideIn, {"user_id": _ID, "cost_per_month_usd": "2000000"}, "cost_per_month_usd", "from 0 to 1,000,000"),
    (QuotaOverrideIn, {"user_id": _ID, "cost_per_month_usd": "lots"}, "cost_per_month_usd", "from 0 to 1,000,000"),
    (QuotaOverrideIn, {"user_id": _ID, "cost_per_month_usd": "1.23456"}, "cost_per_month_usd", "at most 4 decimals"),
    (EmailIn, {"email": "a\u200e@example.com"}, "email", "U+200E"),
    (SearchIn, {"query": "q" * 201}, "query", "at most 200 characters"),
    (SearchIn, {"query": "?!"}, "query", "at most 200 characters"),
    (SearchIn, {"query": ""}, "query", "Type a word"),
    (SearchIn, {"query": 42}, "query", "at most 200 characters"),
]


@pytest.mark.parametrize(("model", "values", "field", "words"), LIMIT_CASES)
def test_messages_are_for_people_and_name_the_limit(model, values, field, words):
    with pytest.raises(ValidationError) as info:
        model(**values)
    errors = field_errors(info.value)
    assert field in errors, errors
    message = errors[field]
    assert words in message, message
    assert message[0].isupper() and message.endswith("."), message
    assert not any(p in message.lower() for p in RAW_PHRASES), message


def test_the_issues_two_messages_are_rewritten():
    """The two messages a black-box probe of the account forms found."""
    with pytest.raises(ValidationError) as long_password:
        SignInIn(email="a@example.com", password="p" * 10_000)
    assert field_errors(long_password.value) == {"password": "Use at most 256 characters."}
    with pytest.raises(ValidationError) as long_role:
        ProfileIn(role="r" * 80)
    assert field_errors(long_role.value) == {"role": "Use at most 60 characters."}
    assert error_lines(long_role.value) == ["Role: Use at most 60 characters."]


def test_a_value_that_is_not_a_validation_error_gets_a_plain_message():
    assert field_errors(RuntimeError("internal detail")) == {"": "This value cannot be used. Check it and try again."}


def test_search_terms_are_the_words_lower_cased_once_each_and_at_most_eight():
    assert SearchIn(query="  Plan the Q3 plan: plan-B!  ").terms == ("plan", "the", "q3", "b")
    assert len(SearchIn(query=" ".join(f"w{i}" for i in range(20))).terms) == 8
    assert SearchIn(query="snake_case").terms == ("snake", "case")
