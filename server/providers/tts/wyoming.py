"""Text to speech by a Wyoming service (wyoming-piper, Home Assistant add-ons …).

Registry name ``wyoming``; needs the extra ``[wyoming]``. One connection per sentence:
``synthesize`` (text, voice name/speaker) → ``audio-start`` (rate, width, channels),
``audio-chunk`` …, ``audio-stop``. :meth:`WyomingTts.synthesize_stream` yields the audio in
whole 60 ms pieces as the chunks arrive (services that synthesise sentence by sentence send
the first chunk early); :meth:`WyomingTts.synthesize` returns the whole sentence.

Refused connects and timeouts before any audio are retried ``retries`` times (retryable
``tts-unreachable``/``tts-timeout``); an ``error`` event or a broken stream is
``tts-engine-failed``; no audio at all is ``tts-empty-output``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from server.config import TtsSettings, WyomingTtsSettings
from server.errors import ErrorCode, ProviderError
from server.providers.base import SpeechAudio, TtsCapabilities
from server.providers.retry import with_retries
from server.providers.tts.audio_stream import Reframer
from server.providers.tts.process import check_text
from server.providers.wyoming_peer import WyomingPeer, wyoming_module


class WyomingTts:
    """Speech from a Wyoming service; shared by all sessions."""

    name = "wyoming"

    def __init__(self, settings: TtsSettings | None = None) -> None:
        self._tts = wyoming_module("tts")  # fails early, naming the extra
        self._audio = wyoming_module("audio")
        self.settings: WyomingTtsSettings = (settings or TtsSettings()).wyoming
        self.capabilities = TtsCapabilities(
            languages=frozenset(self.settings.languages),
            sample_rate_hz=self.settings.sample_rate_hz,
            streaming=True,
        )

    def _request(self, text: str) -> Any:
        s = self.settings
        voice = None
        if s.voice is not None:
            voice = self._tts.SynthesizeVoice(name=s.voice, speaker=s.speaker)
        return self._tts.Synthesize(text=text, voice=voice)

    async def _receive(self, peer: WyomingPeer, timeout_s: float) -> Any:
        return await peer.receive(
            max(0.01, timeout_s), code=ErrorCode.TTS_FAILED, timeout_code=ErrorCode.TTS_TIMEOUT
        )

    async def _open(self, text: str, deadline: float) -> tuple[WyomingPeer, Any]:
        """Connect, ask, and wait for ``audio-start``: (peer, its AudioStart)."""
        s = self.settings
        peer = await WyomingPeer.open(
            s.host,
            s.port,
            timeout_s=s.connect_timeout_s,
            unreachable=ErrorCode.TTS_UNREACHABLE,
            timeout_code=ErrorCode.TTS_TIMEOUT,
        )
        try:
            await peer.send(self._request(text))
            while True:
                event = await self._receive(peer, deadline - time.monotonic())
                if self._audio.AudioStart.is_type(event.type):
                    return peer, self._audio.AudioStart.from_event(event)
                if self._audio.AudioStop.is_type(event.type):
                    raise ProviderError(
                        f"{peer.where} sent no audio", code=ErrorCode.TTS_EMPTY_OUTPUT
                    )
        except BaseException:
            await peer.close()
            raise

    async def synthesize_stream(
        self, text: str, *, language: str | None = None
    ) -> AsyncIterator[SpeechAudio]:
        """Speech for one sentence in whole 60 ms pieces as the service sends it (see base)."""
        clean = check_text(text)
        s = self.settings
        deadline = time.monotonic() + s.timeout_s
        peer, start = await with_retries(
            lambda: self._open(clean, deadline), attempts=s.retries + 1, what="Wyoming TTS"
        )
        audio = self._audio
        convert = audio.AudioChunkConverter(rate=None, width=2, channels=1)
        rate = int(start.rate)
        frames = Reframer(60)
        sent = False
        try:
            while True:
                event = await self._receive(peer, deadline - time.monotonic())
                if audio.AudioStop.is_type(event.type):
                    break
                if not audio.AudioChunk.is_type(event.type):
                    continue
                chunk = convert.convert(audio.AudioChunk.from_event(event))
                rate = int(chunk.rate)
                pcm = np.frombuffer(chunk.audio, dtype="<i2").astype(np.int16)
                piece = frames.push(pcm, rate)
                if piece is not None:
                    sent = True
                    yield SpeechAudio(pcm=piece, sample_rate_hz=rate)
        finally:
            await peer.close()
        rest = frames.rest()
        if rest is not None:
            sent = True
            yield SpeechAudio(pcm=rest, sample_rate_hz=rate)
        if not sent:
            raise ProviderError(f"{peer.where} sent no audio", code=ErrorCode.TTS_EMPTY_OUTPUT)

    async def synthesize(self, text: str, *, language: str | None = None) -> SpeechAudio:
        """The whole sentence at the service's rate."""
        pieces = [p async for p in self.synthesize_stream(text, language=language)]
        pcm = np.concatenate([p.pcm for p in pieces])
        return SpeechAudio(pcm=pcm, sample_rate_hz=pieces[0].sample_rate_hz)
