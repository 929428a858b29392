"""Conversation titles made from the first message."""

from __future__ import annotations

from core.conversations import DEFAULT_TITLE, title_from_message


def test_short_message_is_the_title_with_whitespace_collapsed():
    assert title_from_message("  How do we\n\tplan Q3?  ") == "How do we plan Q3?"
    assert title_from_message("   \n ") == DEFAULT_TITLE


def test_long_message_is_cut_at_a_word_with_an_ellipsis():
    title = title_from_message("Should we split the monolith this quarter, given a team of twelve engineers?")
    assert title == "Should we split the monolith this quarter, given a team of…"
    assert len(title) <= 61


def test_a_long_message_of_punctuation_keeps_some_of_it():
    assert title_from_message("." * 70) == "." * 60 + "…"
    assert title_from_message("- " * 40).startswith("- -")
