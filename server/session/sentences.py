"""Sentence splitting for speech out (the shared streaming splitter of :mod:`server.text`)."""

from __future__ import annotations

from typing import Protocol


class SentenceSplitter(Protocol):
    def feed(self, text: str) -> list[str]:
        """Add streamed text; returns the sentences completed by it."""
        ...

    def flush(self) -> list[str]:
        """End of the answer: the remaining text as a sentence (if any)."""
        ...


def make_splitter() -> SentenceSplitter:
    """A fresh splitter for one answer (cuts the first sentence early at a clause boundary, so
    the first audio goes out sooner)."""
    from server.text import SentenceSplitter as TextSplitter

    return TextSplitter()
