"""espeak-ng: tiny, fast, many languages (22,050 Hz). Chinese text uses ``cmn-latn-pinyin``."""

from __future__ import annotations

import asyncio
import logging
import re

from server.config import TtsSettings
from server.providers.base import SpeechAudio, TtsCapabilities
from server.providers.tts.process import check_text, find_binary, run_engine
from server.providers.tts.wav import decode_wav

log = logging.getLogger(__name__)

CJK_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
CHINESE_VOICE = "cmn-latn-pinyin"
"""The plain ``cmn`` voice reads tone digits aloud in English."""
BASE_WORDS_PER_MIN = 175


def has_cjk(text: str) -> bool:
    return CJK_RE.search(text) is not None


class EspeakTts:
    """Runs ``espeak-ng --stdout`` per sentence; text is fed on stdin (never parsed as options)."""

    name = "espeak"
    capabilities = TtsCapabilities(languages=frozenset({"en", "zh"}), sample_rate_hz=22050)

    def __init__(
        self,
        settings: TtsSettings | None = None,
        *,
        max_concurrency: int = 2,
        timeout_s: float = 20.0,
    ) -> None:
        settings = settings or TtsSettings()
        self._binary = find_binary(["espeak-ng", "espeak"], "espeak-ng")
        self.voice = settings.voice or "en-us"
        self.words_per_min = max(80, min(450, round(BASE_WORDS_PER_MIN * settings.speed)))
        self._limit = asyncio.Semaphore(max_concurrency)
        self._timeout_s = timeout_s

    def voice_for(self, text: str, language: str | None = None) -> str:
        """``cmn-latn-pinyin`` for Chinese text or a ``zh`` language, else the configured voice."""
        if has_cjk(text) or (language or "").lower().startswith(("zh", "cmn")):
            return CHINESE_VOICE
        return self.voice

    async def synthesize(self, text: str, *, language: str | None = None) -> SpeechAudio:
        """Speech for one sentence at 22,050 Hz."""
        clean = check_text(text)
        argv = [
            self._binary,
            "--stdout",
            "-v",
            self.voice_for(clean, language),
            "-s",
            str(self.words_per_min),
            "--stdin",
        ]
        out = await run_engine(
            argv, stdin=clean.encode("utf-8"), limit=self._limit, timeout_s=self._timeout_s
        )
        pcm, rate = decode_wav(out)
        return SpeechAudio(pcm=pcm, sample_rate_hz=rate)
