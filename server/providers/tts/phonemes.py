"""Text → IPA phonemes with the Debian ``espeak-ng`` binary (for Piper voices), and clause split.

The sherpa-onnx wheel has no espeak frontend, so Piper voices get their phonemes from
``espeak-ng -q --ipa`` (~25 ms a sentence). espeak prints one line per clause and drops the
punctuation; Piper's models were trained with the clause punctuation in the phoneme string, so
it is put back from the text.
"""

from __future__ import annotations

import re
from typing import Final

from server.providers.base import ProviderError
from server.providers.tts.process import find_binary

CLAUSE_END: Final = re.compile(r"([,;:.!?，。！？；：、]+)\s*")
"""Clause punctuation, ASCII and CJK (full-width)."""


def espeak_binary() -> str:
    return find_binary(["espeak-ng", "espeak"], "espeak-ng")


def espeak_argv(binary: str, text: str, voice: str) -> list[str]:
    """argv that prints ``text``'s IPA phonemes (``--`` so text is never read as an option)."""
    return [binary, "-q", "--ipa", "-v", voice, "--", text]


def clauses(text: str) -> list[str]:
    """``"Hello, world. Bye!"`` → ``["Hello,", "world.", "Bye!"]`` (punctuation kept)."""
    parts = [p.strip() for p in CLAUSE_END.sub(lambda m: m.group(1) + "\n", text).split("\n")]
    return [p for p in parts if p]


def _ascii_punct(mark: str) -> str:
    table = {"，": ",", "。": ".", "！": "!", "？": "?", "；": ";", "：": ":", "、": ","}
    return "".join(table.get(c, c) for c in mark)


def join_phonemes(text: str, espeak_output: str) -> str:
    """espeak's per-clause lines with each clause's punctuation restored (``","`` between
    clauses when the counts disagree)."""
    lines = [" ".join(line.split()) for line in espeak_output.splitlines()]
    lines = [line.replace("\u200d", "") for line in lines if line]
    if not lines:
        raise ProviderError(
            f"espeak-ng produced no phonemes for {text[:40]!r}", code="tts-empty-output"
        )
    marks = [_ascii_punct(m.group(1))[-1] for m in CLAUSE_END.finditer(text)]
    if len(marks) != len(lines):  # espeak split elsewhere: commas between, the last mark at the end
        last = marks[-1] if marks and text.rstrip()[-1:] in "".join(marks) + "。！？" else "."
        marks = [","] * (len(lines) - 1) + [last]
    return " ".join(f"{line}{mark}" for line, mark in zip(lines, marks, strict=True))
