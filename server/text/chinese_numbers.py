"""Chinese numerals both ways, for voice commands and spoken answers.

``parse_chinese_number("把音量调到三十", 5)`` reads ``三十`` → 30. Understood: 零 一 二/两 三 … 九,
十 百 千 万 (十五 = 15, 二十 = 20, 八十五 = 85, 一百零五 = 105, 两千 = 2000, 一万二 is *not*
supported: the colloquial elision is ambiguous), 百分之N (percent: the value N), Arabic
digits (``30``, ``30%``) and full-width digits. :func:`number_to_chinese` writes a number the
way it is read aloud (``45`` → ``四十五``, ``105`` → ``一百零五``).
"""

from __future__ import annotations

from typing import Final

DIGITS: Final = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5,
                 "六": 6, "七": 7, "八": 8, "九": 9}  # fmt: skip
UNITS: Final = {"十": 10, "百": 100, "千": 1000, "万": 10000}
PERCENT_PREFIX: Final = "百分之"
_FULL_WIDTH = str.maketrans("０１２３４５６７８９％", "0123456789%")
_WRITE = "零一二三四五六七八九"


def _parse_digits(text: str, start: int) -> tuple[int, int] | None:
    end = start
    while end < len(text) and text[end].isascii() and text[end].isdigit():
        end += 1
    if end == start:
        return None
    if end < len(text) and text[end] == "%":
        return int(text[start:end]), end + 1
    return int(text[start:end]), end


def _parse_chinese(text: str, start: int) -> tuple[int, int] | None:
    total = section = 0
    digit: int | None = None
    i = start
    last_unit = 10**9
    while i < len(text):
        ch = text[i]
        if DIGITS.get(ch) == 0:
            if digit is not None:
                break  # "三零" is not read as a number here
            if i > start and section == 0 and total == 0:
                break
            if i == start:
                digit = 0
        elif ch in DIGITS:
            if digit is not None:
                break  # "三五" is not a number here
            digit = DIGITS[ch]
        elif ch in UNITS:
            unit = UNITS[ch]
            if unit == 10000:
                total += (section + (digit or 0)) * 10000
                section, digit, last_unit = 0, None, 10**9
            else:
                if unit >= last_unit:
                    break
                if digit is None and unit != 10:
                    break  # 百 alone is not a number; 十 alone is ten
                section += (1 if digit is None else digit) * unit
                digit, last_unit = None, unit
        else:
            break
        i += 1
    if i == start:
        return None
    return total + section + (digit or 0), i


def parse_chinese_number(text: str, start: int = 0) -> tuple[int, int] | None:
    """The number at ``text[start:]`` and the index after it, or None.

    ``百分之五十`` → 50 (the percent value), ``30%`` → 30.
    """
    text = text.translate(_FULL_WIDTH)
    if text.startswith(PERCENT_PREFIX, start):
        found = parse_chinese_number(text, start + len(PERCENT_PREFIX))
        return found if found is not None and found[1] > start + len(PERCENT_PREFIX) else None
    return _parse_digits(text, start) or _parse_chinese(text, start)


def find_chinese_number(text: str) -> int | None:
    """The first number anywhere in ``text`` (None if there is none)."""
    for i in range(len(text)):
        found = parse_chinese_number(text, i)
        if found is not None:
            return found[0]
    return None


def number_to_chinese(n: int) -> str:
    """How ``n`` is read aloud: 0 → 零, 10 → 十, 15 → 十五, 45 → 四十五, 105 → 一百零五."""
    if n < 0:
        return "负" + number_to_chinese(-n)
    if n < 10:
        return _WRITE[n]
    if n >= 100_000_000:
        return str(n)
    if n >= 10000:
        high, low = divmod(n, 10000)
        tail = "" if low == 0 else ("零" if low < 1000 else "") + number_to_chinese(low)
        return number_to_chinese(high) + "万" + tail
    out = ""
    zero = False
    for value, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        d, n = divmod(n, value)
        if d:
            if zero:
                out += "零"
            out += _WRITE[d] + unit
            zero = False
        elif out:
            zero = True
    return out[1:] if out.startswith("一十") else out
