"""Input models: any value gives a model or a ValidationError naming the field, never a crash (C6)."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from models.schemas import (
    MAX_ROLE,
    MAX_STACK_ITEMS,
    ChatIn,
    ConversationIn,
    ProfileIn,
    QuotaOverrideIn,
    RenameIn,
    SearchIn,
    SignUpIn,
    VibeIn,
    field_errors,
)

anything = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=300),
    st.binary(max_size=50), st.lists(st.text(max_size=60), max_size=30),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)
MODELS = {
    SignUpIn: ["email", "password"],
    ProfileIn: ["role", "stack", "vertical"],
    VibeIn: ["name", "playfulness", "revenue_focus", "technical_depth", "brevity", "formality"],
    ConversationIn: ["title", "agent"],
    RenameIn: ["conversation_id", "title"],
    ChatIn: ["conversation_id", "text"],
    QuotaOverrideIn: ["user_id", "tokens_per_day", "cost_per_month_usd"],
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


def test_search_terms_are_the_words_lower_cased_once_each_and_at_most_eight():
    assert SearchIn(query="  Plan the Q3 plan: plan-B!  ").terms == ("plan", "the", "q3", "b")
    assert len(SearchIn(query=" ".join(f"w{i}" for i in range(20))).terms) == 8
    assert SearchIn(query="snake_case").terms == ("snake", "case")
