"""English number words both ways, lowercase and without hyphens ("twenty one" ↔ 21).

Covers 0 to 999,999,999, which is far beyond what a voice command needs.
"""

from __future__ import annotations

from collections.abc import Sequence

ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
SCALES = ((1_000_000, "million"), (1_000, "thousand"), (100, "hundred"))
MAX_NUMBER = 999_999_999

_UNITS = {word: value for value, word in enumerate(ONES)}
_TENS = {word: 10 * i for i, word in enumerate(TENS) if word != "_"}
_SCALE = {"hundred": 100, "thousand": 1_000, "million": 1_000_000}
NUMBER_WORDS = frozenset({*_UNITS, *_TENS, *_SCALE, "a", "and"})


def number_to_words(n: int) -> str:
    """``21`` → ``"twenty one"``, ``100`` → ``"one hundred"``, ``-5`` → ``"minus five"``."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n > MAX_NUMBER:
        raise ValueError(f"{n} is larger than {MAX_NUMBER}")
    if n < 20:
        return ONES[n]
    if n < 100:
        tens, unit = divmod(n, 10)
        return TENS[tens] + ("" if unit == 0 else " " + ONES[unit])
    for size, name in SCALES:
        if n >= size:
            head, rest = divmod(n, size)
            words = f"{number_to_words(head)} {name}"
            return words if rest == 0 else f"{words} {number_to_words(rest)}"
    raise AssertionError("unreachable")


def parse_number(tokens: Sequence[str], start: int = 0) -> tuple[int, int] | None:
    """Read the longest number at ``tokens[start]``: digits (``"30"``, ``"-5"``) or words
    (``"one hundred and five"``, ``"a hundred"``). Returns ``(value, end_index)`` or None."""
    if start >= len(tokens):
        return None
    first = tokens[start]
    if first.lstrip("-").isdigit() and first.count("-") <= 1 and not first.endswith("-"):
        return int(first), start + 1
    sign, i = 1, start
    if first in ("minus", "negative"):
        sign, i = -1, start + 1
    if i < len(tokens) and tokens[i] == "zero":
        return 0, i + 1
    total = current = 0
    last = ""  # "", "unit", "teen", "tens", "hundred", "big", "and"
    big_limit = MAX_NUMBER + 1
    end = None
    while i < len(tokens):
        word = tokens[i]
        below_hundred = current % 100
        if word in _UNITS and word != "zero":
            value = _UNITS[word]
            if value < 10:
                if last not in ("", "tens", "hundred", "big", "and"):
                    break
            elif last not in ("", "hundred", "big", "and"):
                break
            current += value
            last = "unit" if value < 10 else "teen"
        elif word in _TENS:
            if last not in ("", "hundred", "big", "and") or below_hundred:
                break
            current += _TENS[word]
            last = "tens"
        elif word == "a" and last == "" and i + 1 < len(tokens) and tokens[i + 1] in _SCALE:
            current, last = 1, "unit"
            i += 1
            continue  # not a number by itself: end is only set once the scale word is read
        elif word == "hundred":
            if last not in ("unit", "teen", "tens") or not 0 < current < 100:
                break
            current *= 100
            last = "hundred"
        elif word in ("thousand", "million"):
            scale = _SCALE[word]
            if last not in ("unit", "teen", "tens", "hundred") or scale >= big_limit:
                break
            total += current * scale
            current, big_limit, last = 0, scale, "big"
        elif word == "and" and last in ("hundred", "big"):
            nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
            if nxt == "zero" or (nxt not in _UNITS and nxt not in _TENS):
                break
            last = "and"
            i += 1
            continue
        else:
            break
        i += 1
        end = i
    if end is None:
        return None
    return sign * (total + current), end


def words_to_number(text: str) -> int | None:
    """The whole of ``text`` as a number (``"thirty"`` → 30, ``"42"`` → 42), else None."""
    tokens = text.lower().replace("-", " ").split()
    parsed = parse_number(tokens)
    if parsed is None or parsed[1] != len(tokens):
        return None
    return parsed[0]
