"""A one-line progress bar on stderr (audio sent, latest text)."""

from __future__ import annotations

import sys
from typing import TextIO


class Progress:
    def __init__(self, total: int, *, stream: TextIO = sys.stderr, enabled: bool = True) -> None:
        self.total, self.done, self.text = max(total, 1), 0, ""
        self._stream, self._enabled = stream, enabled and stream.isatty()

    def advance(self, n: int = 1) -> None:
        self.done += n
        self._draw()

    def note(self, text: str) -> None:
        self.text = text
        self._draw()

    def close(self) -> None:
        if self._enabled:
            self._stream.write("\n")

    def _draw(self) -> None:
        if not self._enabled:
            return
        width = 30
        filled = int(width * min(self.done, self.total) / self.total)
        bar = "#" * filled + "-" * (width - filled)
        self._stream.write(f"\r[{bar}] {100 * self.done // self.total:3d}% {self.text[-40:]:<40}")
        self._stream.flush()
