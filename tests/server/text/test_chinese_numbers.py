"""Chinese numerals both ways."""

from __future__ import annotations

import pytest

from server.text.chinese_numbers import find_chinese_number, number_to_chinese, parse_chinese_number


@pytest.mark.parametrize(
    ("text", "value"),
    [("三十", 30), ("八十五", 85), ("百分之五十", 50), ("十", 10), ("十五", 15), ("两", 2),
     ("一百", 100), ("一百零五", 105), ("两千零二十六", 2026), ("零", 0), ("30", 30), ("30%", 30),
     ("３０", 30)],
)  # fmt: skip
def test_parses_whole_numerals(text: str, value: int) -> None:
    assert parse_chinese_number(text) == (value, len(text))


def test_stops_at_the_end_of_the_number() -> None:
    assert parse_chinese_number("五十度") == (50, 2)
    assert parse_chinese_number("三五") == (3, 1)  # not one number
    assert parse_chinese_number("百") is None and parse_chinese_number("音量") is None
    assert find_chinese_number("把音量调到三十") == 30


@pytest.mark.parametrize("n", [0, 5, 10, 15, 20, 45, 100, 105, 110, 1000, 1005, 2026, 12345])
def test_round_trip(n: int) -> None:
    assert parse_chinese_number(number_to_chinese(n)) == (n, len(number_to_chinese(n)))


def test_reads_aloud() -> None:
    assert [number_to_chinese(n) for n in (10, 15, 45, 105)] == ["十", "十五", "四十五", "一百零五"]
