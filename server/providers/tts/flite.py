"""flite: the default offline English voice (16 kHz with the ``slt`` voice)."""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from pathlib import Path

from server.config import TtsSettings
from server.providers.base import SpeechAudio, TtsCapabilities
from server.providers.tts.process import check_text, find_binary, run_engine
from server.providers.tts.wav import decode_wav

log = logging.getLogger(__name__)

DEFAULT_VOICE = "slt"
"""A 16 kHz voice (flite's built-in default ``kal`` is 8 kHz)."""


def _text_file(text: str) -> Path:
    fd, name = tempfile.mkstemp(prefix="xiaozhi-flite-", suffix=".txt")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return Path(name)


def _remove(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


class FliteTts:
    """Runs the ``flite`` binary per sentence; at most ``max_concurrency`` at once."""

    name = "flite"
    capabilities = TtsCapabilities(languages=frozenset({"en"}), sample_rate_hz=16000)

    def __init__(
        self,
        settings: TtsSettings | None = None,
        *,
        max_concurrency: int = 2,
        timeout_s: float = 20.0,
    ) -> None:
        settings = settings or TtsSettings()
        self._binary = find_binary(["flite"], "flite")
        self.voice = settings.voice or DEFAULT_VOICE
        self.speed = settings.speed
        self._limit = asyncio.Semaphore(max_concurrency)
        self._timeout_s = timeout_s

    async def synthesize(self, text: str, *, language: str | None = None) -> SpeechAudio:
        """Speech for one sentence at the voice's native rate (16 kHz for ``slt``)."""
        clean = check_text(text)
        path = await asyncio.to_thread(_text_file, clean)
        wav = path.with_suffix(".wav")
        try:
            argv = [self._binary, "-voice", self.voice]
            if self.speed != 1.0:
                argv += ["--setf", f"duration_stretch={1.0 / self.speed:.3f}"]
            # the text goes through a file so nothing in it is parsed as an option
            argv += ["-f", str(path), "-o", str(wav)]
            await run_engine(argv, stdin=None, limit=self._limit, timeout_s=self._timeout_s)
            data = await asyncio.to_thread(wav.read_bytes)
        finally:
            await asyncio.to_thread(_remove, path, wav)
        pcm, rate = decode_wav(data)
        return SpeechAudio(pcm=pcm, sample_rate_hz=rate)
