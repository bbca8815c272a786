"""Entities in a transcript: numbers, times, durations and percentages, English and Chinese.

Each :class:`Entity` has ``type`` (``number``/``time``/``duration``/``percentage``), a normalised
``value`` (``"42"``, ``"15:30"``, ``"PT10M"`` in ISO 8601, ``"30%"``) and ``start``/``end``
character offsets into the text (end exclusive), so ``text[start:end]`` is what was said.

English handles words (what pocketsphinx writes: "ten minutes", "thirty percent", "at three
thirty", "seven p m") and digits (what Whisper writes: "10 minutes", "30%", "3:30 pm"); Chinese
handles numerals and digits ("百分之三十", "三点十五分", "下午三点半", "十分钟", "两万五千").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from server.text.numbers import parse_number


@dataclass(frozen=True, slots=True)
class Entity:
    type: str
    value: str
    start: int
    end: int

    def to_json(self) -> dict[str, object]:
        return {"type": self.type, "value": self.value, "start": self.start, "end": self.end}


_EN_UNITS: Final = {
    "second": "S",
    "minute": "MIN",
    "hour": "H",
    "day": "D",
    "week": "W",
    "month": "MON",
    "year": "Y",
}
_WORD = re.compile(r"[\w'%:.]+")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")
_PERCENT = re.compile(r"^(\d+(?:\.\d+)?)%$")
_CJK = re.compile(r"[\u4e00-\u9fff]")


def _duration(value: int | float, unit: str) -> str:
    """ISO 8601: minutes ``PT2M``, months ``P2M``, days ``P2D``."""
    amount = f"{value:g}"
    if unit in ("H", "MIN", "S"):
        return f"PT{amount}{unit[0]}"
    return f"P{amount}{'M' if unit == 'MON' else unit}"


def _en_unit(word: str) -> str | None:
    base = word[:-1] if word.endswith("s") else word
    return _EN_UNITS.get(base)


def _meridiem(tokens: list[str], i: int) -> tuple[str, int] | None:
    """``am``/``pm``/``a.m.``/``a m`` at ``tokens[i]``: (``am``|``pm``, tokens used)."""
    word = tokens[i] if i < len(tokens) else ""
    flat = word.replace(".", "")
    if flat in ("am", "pm"):
        return flat, 1
    if flat in ("a", "p") and i + 1 < len(tokens) and tokens[i + 1].replace(".", "") == "m":
        return flat + "m", 2
    return None


def _clock(hour: int, minute: int, meridiem: str | None) -> str:
    if meridiem == "pm" and hour < 12:
        hour += 12
    elif meridiem == "am" and hour == 12:
        hour = 0
    return f"{hour:02d}:{minute:02d}"


def _english(text: str) -> list[Entity]:
    found = [
        (m.start(), m.end(), m.group().lower().rstrip(".").strip("'")) for m in _WORD.finditer(text)
    ]
    tokens = [t for _, _, t in found]
    out: list[Entity] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]

        def span(a: int, b: int) -> tuple[int, int]:
            return found[a][0], found[b - 1][1]

        clock, pct = _CLOCK.match(tok), _PERCENT.match(tok)
        if clock or pct:
            if clock:
                mer = _meridiem(tokens, i + 1)
                end = i + 1 + (mer[1] if mer else 0)
                stamp = _clock(int(clock[1]), int(clock[2]), mer[0] if mer else None)
                out.append(Entity("time", stamp, *span(i, end)))
            else:
                assert pct is not None
                end = i + 1
                out.append(Entity("percentage", f"{pct[1]}%", *span(i, end)))
            i = end
            continue
        parsed = parse_number(tokens, i)
        if parsed is None:
            i += 1
            continue
        value, end = parsed
        nxt = tokens[end] if end < len(tokens) else ""
        after = tokens[end + 1] if end + 1 < len(tokens) else ""
        prev = tokens[i - 1] if i > 0 else ""
        if nxt == "percent" or (nxt == "per" and after == "cent"):
            end += 1 if nxt == "percent" else 2
            out.append(Entity("percentage", f"{value}%", *span(i, end)))
        elif _en_unit(nxt):
            unit = _en_unit(nxt)
            assert unit is not None
            out.append(Entity("duration", _duration(value, unit), *span(i, end + 1)))
            end += 1
        elif nxt in ("o'clock", "oclock") and 0 <= value <= 12:
            out.append(Entity("time", _clock(value, 0, None), *span(i, end + 1)))
            end += 1
        elif 0 <= value <= 12 and (mer := _meridiem(tokens, end)):
            out.append(Entity("time", _clock(value, 0, mer[0]), *span(i, end + mer[1])))
            end += mer[1]
        elif prev == "at" and 1 <= value <= 12 and (minute := parse_number(tokens, end)):
            minutes, stop = minute
            if 0 <= minutes <= 59:
                mer = _meridiem(tokens, stop)
                stop += mer[1] if mer else 0
                value_s = _clock(value, minutes, mer[0] if mer else None)
                out.append(Entity("time", value_s, *span(i, stop)))
                end = stop
            else:
                out.append(Entity("number", str(value), *span(i, end)))
        else:
            out.append(Entity("number", str(value), *span(i, end)))
        i = end
    return out


# ----------------------------------------------------------------------------- Chinese

_CN_DIGITS: Final = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_CN_SMALL: Final = {"十": 10, "百": 100, "千": 1000}
_CN_BIG: Final = {"万": 10_000, "亿": 100_000_000}
_NUM = r"(?:[0-9]+(?:\.[0-9]+)?|[零〇一二两三四五六七八九十百千万亿]+)"
_CN_UNITS: Final = {
    "秒": "S",
    "秒钟": "S",
    "分钟": "MIN",
    "小时": "H",
    "个小时": "H",
    "天": "D",
    "周": "W",
    "星期": "W",
    "个星期": "W",
    "个月": "MON",
    "年": "Y",
}
_CN_PATTERNS: Final = (
    ("percentage", re.compile(rf"百分之(?P<n>{_NUM})|(?P<d>[0-9]+(?:\.[0-9]+)?)[%％]")),
    (
        "time",
        re.compile(
            rf"(?P<ampm>上午|早上|中午|下午|晚上)?(?P<h>{_NUM})点(?:(?P<half>半)|(?P<m>{_NUM})分?|钟)?"
            r"|(?P<hh>[0-9]{1,2})[:：](?P<mm>[0-9]{2})"
        ),
    ),
    (
        "duration",
        re.compile(rf"(?P<n>{_NUM})(?P<u>个小时|个星期|个月|秒钟|分钟|小时|星期|秒|天|周|年)"),
    ),
    ("number", re.compile(rf"(?P<n>{_NUM})")),
)


def chinese_number(text: str) -> int | float | None:
    """``"两万五千"`` → 25000, ``"十五"`` → 15, ``"3.5"`` → 3.5; None if not a number."""
    if re.fullmatch(r"[0-9]+", text):
        return int(text)
    if re.fullmatch(r"[0-9]+\.[0-9]+", text):
        return float(text)
    total = section = digit = 0
    seen = False
    for ch in text:
        if ch in _CN_DIGITS:
            digit, seen = _CN_DIGITS[ch], True
        elif ch in _CN_SMALL:
            section += (digit or (1 if not seen or digit == 0 else 0) or 1) * _CN_SMALL[ch]
            digit, seen = 0, True
        elif ch in _CN_BIG:
            total = (total + section + digit) * _CN_BIG[ch]
            section = digit = 0
        else:
            return None
    if not seen:
        return None
    return total + section + digit


def _chinese(text: str) -> list[Entity]:
    out: list[Entity] = []
    taken = [False] * len(text)
    for kind, pattern in _CN_PATTERNS:
        for m in pattern.finditer(text):
            if any(taken[m.start() : m.end()]):
                continue
            value = _cn_value(kind, m)
            if value is None:
                continue
            out.append(Entity(kind, value, m.start(), m.end()))
            for k in range(m.start(), m.end()):
                taken[k] = True
    return sorted(out, key=lambda e: e.start)


def _cn_value(kind: str, m: re.Match[str]) -> str | None:
    groups = m.groupdict()
    if kind == "percentage":
        n = chinese_number(groups["n"] or groups["d"])
        return None if n is None else f"{n:g}%"
    if kind == "time":
        if groups.get("hh"):
            return f"{int(groups['hh']):02d}:{groups['mm']}"
        hour = chinese_number(groups["h"])
        minute = 30 if groups["half"] else chinese_number(groups["m"]) if groups["m"] else 0
        if not isinstance(hour, int) or not isinstance(minute, int) or hour > 24 or minute > 59:
            return None
        if groups["ampm"] in ("下午", "晚上") and hour < 12:
            hour += 12
        return f"{hour:02d}:{minute:02d}"
    n = chinese_number(groups["n"])
    if n is None:
        return None
    if kind == "duration":
        return _duration(n, _CN_UNITS[groups["u"]])
    return f"{n:g}"


def extract_entities(text: str) -> list[Entity]:
    """Entities of ``text`` in order (Chinese rules when it holds CJK characters)."""
    return _chinese(text) if _CJK.search(text) else _english(text)
