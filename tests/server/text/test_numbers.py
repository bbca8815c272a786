from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.text import number_to_words, parse_number, words_to_number


@pytest.mark.parametrize(
    ("n", "words"),
    [(0, "zero"), (7, "seven"), (13, "thirteen"), (21, "twenty one"), (30, "thirty"),
     (100, "one hundred"), (105, "one hundred five"), (2024, "two thousand twenty four"),
     (1_000_000, "one million"), (-5, "minus five")],
)  # fmt: skip
def test_number_to_words(n: int, words: str) -> None:
    assert number_to_words(n) == words
    assert words_to_number(words) == n


@given(st.integers(min_value=-999_999_999, max_value=999_999_999))
def test_round_trip(n: int) -> None:
    assert words_to_number(number_to_words(n)) == n


@pytest.mark.parametrize(
    ("text", "value"),
    [("one hundred and five", 105), ("a hundred", 100), ("Twenty-One", 21), ("42", 42),
     ("one two", None), ("thirty forty", None), ("hundred", None), ("a", None), ("", None),
     ("twenty ten", None), ("five hundred hundred", None)],
)  # fmt: skip
def test_words_to_number(text: str, value: int | None) -> None:
    assert words_to_number(text) == value


def test_parse_number_stops_at_the_first_non_number_word() -> None:
    tokens = ["set", "the", "volume", "to", "thirty", "five", "percent"]
    assert parse_number(tokens, 4) == (35, 6)
    assert parse_number(tokens, 0) is None
    assert parse_number(["one", "two"], 0) == (1, 1)
    assert parse_number(["fifty", "and", "more"], 0) == (50, 1)
