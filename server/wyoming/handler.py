"""One Wyoming connection: ``describe`` → ``info``; ``transcribe`` + audio → ``transcript``;
``synthesize`` (or the streaming ``synthesize-start``/``-chunk``/``-stop``) → audio.

A thin shell over the server's shared providers: recognition runs in the server's executor
(the ASR stream's calls are blocking), audio is converted to 16 kHz/16-bit/mono with the
library's converter. Events are handled in order; unknown events are ignored (the protocol's
rule). A failure is answered with an ``error`` event carrying the provider's code, never a
dropped connection without a word.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

import numpy as np

from server.errors import ProviderError
from server.providers.base import AsrProvider, AsrStream, TtsProvider
from server.providers.tts.pieces import synthesize_pieces
from server.text import SentenceSplitter

logger = logging.getLogger(__name__)

ASR_RATE_HZ = 16000
CHUNK_SAMPLES = 1024
"""Samples per ``audio-chunk`` sent back (as wyoming-piper does)."""


class WyomingHandler:
    """Handles the events of one connection; :meth:`handle` returns False to hang up."""

    def __init__(
        self,
        write: Callable[[Any], Any],
        *,
        asr: AsrProvider | None,
        tts: TtsProvider | None,
        executor: Executor,
        info: Any,
        phrases: Callable[[], list[str] | None],
        max_audio_s: float,
    ) -> None:
        from wyoming import asr as wasr
        from wyoming import audio, error
        from wyoming import info as winfo
        from wyoming import tts as wtts

        self._w = (wasr, audio, error, winfo, wtts)
        self._write = write
        self._asr, self._tts, self._executor = asr, tts, executor
        self._info = info
        self._phrases = phrases
        self._max_samples = int(max_audio_s * ASR_RATE_HZ)
        self._stream: AsrStream | None = None
        self._converter: Any = None
        self._samples = 0
        self._language: str | None = None
        self._splitter: SentenceSplitter | None = None
        """Set between ``synthesize-start`` and ``synthesize-stop``."""

    async def _send(self, eventable: Any) -> None:
        await self._write(eventable.event())

    async def _error(self, text: str, code: str) -> None:
        await self._send(self._w[2].Error(text=text, code=code))

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def handle(self, event: Any) -> bool:
        wasr, audio, _error, winfo, wtts = self._w
        t = event.type
        try:
            if winfo.Describe.is_type(t):
                await self._send(self._info)
            elif wasr.Transcribe.is_type(t):
                self._language = wasr.Transcribe.from_event(event).language
            elif audio.AudioStart.is_type(t):
                await self._begin()
            elif audio.AudioChunk.is_type(t):
                await self._chunk(audio.AudioChunk.from_event(event))
            elif audio.AudioStop.is_type(t):
                await self._finish()
            elif wtts.SynthesizeStart.is_type(t):
                self._splitter = SentenceSplitter()
            elif wtts.SynthesizeChunk.is_type(t):
                if self._splitter is not None:
                    for sentence in self._splitter.feed(
                        wtts.SynthesizeChunk.from_event(event).text
                    ):
                        await self._speak(sentence)
            elif wtts.SynthesizeStop.is_type(t):
                splitter, self._splitter = self._splitter, None
                for sentence in splitter.flush() if splitter else []:
                    await self._speak(sentence)
                await self._send(wtts.SynthesizeStopped())
            elif wtts.Synthesize.is_type(t) and self._splitter is None:
                # (inside a stream it only repeats the chunks' text)
                await self._speak(wtts.Synthesize.from_event(event).text)
        except ProviderError as exc:
            logger.warning("Wyoming %s failed (%s): %s", t, exc.code, exc)
            await self._error(str(exc), exc.code)
        except (KeyError, TypeError, ValueError) as exc:  # a malformed event of a known type
            logger.info("Wyoming: malformed %s event: %s", t, exc)
            await self._error(f"malformed {t} event: {exc}", "bad-event")
        return True

    # ------------------------------------------------------------------ speech to text

    async def _begin(self) -> None:
        if self._asr is None:
            raise ProviderError("this server offers no speech-to-text", code="asr-unavailable")
        await self.close()
        phrases = self._phrases()
        self._stream = await self._run(self._asr.create_stream, phrases)
        self._converter = self._w[1].AudioChunkConverter(rate=ASR_RATE_HZ, width=2, channels=1)
        self._samples = 0

    async def _chunk(self, chunk: Any) -> None:
        if self._stream is None:
            await self._begin()  # audio without audio-start: start anyway
        assert self._stream is not None
        if self._samples >= self._max_samples:
            return  # over wyoming.max_audio_s: the rest is dropped
        converted = self._converter.convert(chunk)
        pcm = np.frombuffer(converted.audio, dtype="<i2").astype(np.int16)
        self._samples += len(pcm)
        await self._run(self._stream.accept, pcm)

    async def _finish(self) -> None:
        stream, self._stream = self._stream, None
        if stream is None:
            await self._send(self._w[0].Transcript(text="", language=self._language))
            return
        finish_async = getattr(stream, "finish_async", None)
        try:  # a network recogniser is awaited; a local one runs in the executor
            said = await finish_async() if finish_async else await self._run(stream.finish)
        finally:
            await self._run(stream.close)
        language = said.language or self._language
        await self._send(self._w[0].Transcript(text=said.text, language=language))

    # ------------------------------------------------------------------ text to speech

    async def _speak(self, text: str) -> None:
        if self._tts is None:
            raise ProviderError("this server offers no text-to-speech", code="tts-unavailable")
        audio = self._w[1]
        started = False
        rate = 0
        async for piece in synthesize_pieces(self._tts, text):
            rate = piece.sample_rate_hz
            if not started:
                started = True
                await self._send(audio.AudioStart(rate=rate, width=2, channels=1))
            pcm = np.ascontiguousarray(piece.pcm, dtype="<i2")
            for start in range(0, len(pcm), CHUNK_SAMPLES):
                raw = pcm[start : start + CHUNK_SAMPLES].tobytes()
                await self._send(audio.AudioChunk(rate=rate, width=2, channels=1, audio=raw))
        if started:
            await self._send(audio.AudioStop())

    async def close(self) -> None:
        """Release an unfinished recognition (the connection ended mid-utterance)."""
        stream, self._stream = self._stream, None
        if stream is not None:
            await self._run(stream.close)
