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
