"""core.stack_categories: every technology the profile form suggests has a known category."""

from __future__ import annotations

from core.stack_categories import KNOWN_STACK, STACK_CATEGORIES, STACK_CATEGORY_NAMES
from models.schemas import STACK_SUGGESTIONS


def test_every_stack_suggestion_maps_to_a_category() -> None:
    for item in STACK_SUGGESTIONS:
        assert item in STACK_CATEGORIES, item
        assert set(STACK_CATEGORIES[item]) <= set(STACK_CATEGORY_NAMES)
        assert KNOWN_STACK[item.casefold()][0] == item
