"""Split streamed text (LLM deltas) into sentences for TTS, as soon as each one is complete.

English ``. ! ? …`` end a sentence only when followed by whitespace (or the end of the stream), so
"3.5", "Mr. Smith" and "e.g. this" stay whole; Chinese ``。！？；`` and newlines end one at once.
The first sentence is cut early at a comma once it is long enough, so the first audio starts fast.
"""

from __future__ import annotations

import re

ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "st",
        "jr",
        "sr",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "a.m",
        "p.m",
        "fig",
        "approx",
        "dept",
        "mt",
        "ft",
        "inc",
        "ltd",
    ]
)
CLOSERS = "\"')]}”’」』）】"
EN_END = ".!?…"
CJK_END = "。！？；"
CLAUSE_MARKS = ",;:，、；：—"
CJK_CLAUSE_MARKS = "，、；："


class SentenceSplitter:
    """Feed text deltas with :meth:`feed`; get complete sentences back; :meth:`flush` at the end.

    ``first_clause_chars``: once the first sentence is at least this long, cut it at the next
    clause mark (comma...). ``max_chars``: a sentence longer than this is cut at the last space.
    """

    def __init__(self, *, first_clause_chars: int = 30, max_chars: int = 300) -> None:
        self.first_clause_chars = first_clause_chars
        self.max_chars = max_chars
        self._buf = ""
        self._emitted = 0

    def feed(self, delta: str) -> list[str]:
        """Add text; return the sentences it completed (stripped, non-empty)."""
        self._buf += delta
        out: list[str] = []
        while True:
            cut = self._find_cut()
            if cut is None:
                break
            self._take(cut, out)
        return out

    def flush(self) -> list[str]:
        """End of stream: whatever is left (one sentence at most, unless it was too long)."""
        out: list[str] = []
        while (cut := self._find_cut(final=True)) is not None:
            self._take(cut, out)
        self._take(len(self._buf), out)
        return out

    def reset(self) -> None:
        self._buf = ""
        self._emitted = 0

    def _take(self, cut: int, out: list[str]) -> None:
        piece, self._buf = self._buf[:cut].strip(), self._buf[cut:]
        if any(ch.isalnum() for ch in piece):
            out.append(piece)
            self._emitted += 1

    def _find_cut(self, final: bool = False) -> int | None:
        buf = self._buf
        n = len(buf)
        for i, ch in enumerate(buf):
            if ch == "\n":
                return i + 1
            if ch in CJK_END:
                j = _after_closers(buf, i + 1)
                return j if j < n or final else None  # a closing quote may follow
            if ch in EN_END:
                j = i + 1
                while j < n and buf[j] in EN_END:
                    j += 1
                j = _after_closers(buf, j)
                if j >= n:
                    return j if final else None  # the next character decides ("3." + "5")
                if buf[j].isspace() and not (ch == "." and _is_abbreviation(buf, i)):
                    return j
                if _is_cjk(buf[j]) and ch in "!?":
                    return j
            if (
                self._emitted == 0
                and ch in CLAUSE_MARKS
                and len(buf[:i].strip()) >= self.first_clause_chars
            ):
                if ch in CJK_CLAUSE_MARKS:
                    return i + 1
                if i + 1 < n and buf[i + 1].isspace() and not _is_digit_group(buf, i):
                    return i + 1
        if n > self.max_chars:
            space = buf.rfind(" ", 0, self.max_chars)
            return space + 1 if space > 0 else self.max_chars
        return None


def _after_closers(buf: str, j: int) -> int:
    while j < len(buf) and buf[j] in CLOSERS:
        j += 1
    return j


def _is_cjk(ch: str) -> bool:
    return "\u3000" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef"


def _is_digit_group(buf: str, i: int) -> bool:
    """``1,000``: a comma between digits is not a clause mark."""
    return i > 0 and buf[i - 1].isdigit() and i + 1 < len(buf) and buf[i + 1].isdigit()


_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)$")


def _is_abbreviation(buf: str, dot: int) -> bool:
    """Is the ``.`` at ``dot`` the end of "Mr." / "e.g." / a single initial ("J.")?"""
    match = _WORD_BEFORE.search(buf[:dot])
    if not match:
        return False
    word = match.group(1).lower()
    return word in ABBREVIATIONS or (len(word) == 1 and word.isalpha() and buf[dot - 1].isupper())


def split_sentences(text: str, *, first_clause_chars: int = 10_000) -> list[str]:
    """All sentences of a complete text (no early first clause unless asked)."""
    splitter = SentenceSplitter(first_clause_chars=first_clause_chars)
    return [*splitter.feed(text), *splitter.flush()]
