"""Entities with character offsets, English words and digits, Chinese numerals and digits."""

from __future__ import annotations

import pytest

from server.transcribe.entities import chinese_number, extract_entities


def found(text: str) -> list[tuple[str, str, str]]:
    return [(e.type, e.value, text[e.start : e.end]) for e in extract_entities(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("set the volume to thirty", [("number", "30", "thirty")]),
        ("set a timer for ten minutes", [("duration", "PT10M", "ten minutes")]),
        ("volume to thirty percent", [("percentage", "30%", "thirty percent")]),
        ("wake me at seven thirty a m", [("time", "07:30", "seven thirty a m")]),
        ("meet at 3:30 pm", [("time", "15:30", "3:30 pm")]),
        ("at five o'clock", [("time", "05:00", "five o'clock")]),
        ("30% of 200 people", [("percentage", "30%", "30%"), ("number", "200", "200")]),
        (
            "two months and 5 seconds",
            [("duration", "P2M", "two months"), ("duration", "PT5S", "5 seconds")],
        ),
        ("one hundred and five", [("number", "105", "one hundred and five")]),
        ("turn on the kitchen lamp", []),
    ],
)
def test_english(text: str, expected: list[tuple[str, str, str]]) -> None:
    assert found(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("音量调到百分之三十", [("percentage", "30%", "百分之三十")]),
        ("下午三点半开会", [("time", "15:30", "下午三点半")]),
        ("三点十五分", [("time", "03:15", "三点十五分")]),
        ("十分钟以后提醒我", [("duration", "PT10M", "十分钟")]),
        ("两个小时", [("duration", "PT2H", "两个小时")]),
        ("两万五千人", [("number", "25000", "两万五千")]),
        ("明天8:30出发", [("time", "08:30", "8:30")]),
        ("50%的人", [("percentage", "50%", "50%")]),
        ("温度调到25度", [("number", "25", "25")]),
    ],
)
def test_chinese(text: str, expected: list[tuple[str, str, str]]) -> None:
    assert found(text) == expected


@pytest.mark.parametrize(
    ("numeral", "value"),
    [("十五", 15), ("二十", 20), ("一百零五", 105), ("两千", 2000), ("三万", 30000), ("3.5", 3.5)],
)
def test_chinese_numbers(numeral: str, value: float) -> None:
    assert chinese_number(numeral) == value


def test_offsets_are_character_offsets() -> None:
    text = "把音量调到百分之三十"
    (entity,) = extract_entities(text)
    assert (entity.start, entity.end) == (5, 10)
