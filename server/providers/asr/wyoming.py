"""Speech to text by a Wyoming service (wyoming-faster-whisper, Home Assistant add-ons …).

Registry name ``wyoming``; needs the extra ``[wyoming]``. Audio streams to the service while
the user speaks: the first ``accept`` opens the connection and sends ``transcribe`` (model,
language) and ``audio-start``; each ``accept`` queues an ``audio-chunk`` (16 kHz, 16-bit, mono)
without waiting; ``finish`` sends ``audio-stop`` and waits for the ``transcript`` (or the end of
a streamed ``transcript-start``/``-chunk``/``-stop``). The socket work runs on the provider's
:class:`~server.providers.io_thread.IoThread`, so the executor thread only waits in ``finish``.

When the connection fails (refused, timed out), ``finish`` sends the whole utterance again on a
new connection, ``retries`` times, with backoff. Errors are :class:`ProviderError` s:
``asr-unreachable``/``asr-timeout`` (retryable), ``asr-failed`` (the service answered an
``error``, closed, or sent nonsense).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Sequence
from typing import Any, Final

import numpy as np

from protocol.audio import Pcm
from server.config import AsrSettings, WyomingAsrSettings
from server.errors import ErrorCode, ProviderError
from server.providers.asr.openai import upload_language
from server.providers.base import AsrCapabilities, Transcript
from server.providers.io_thread import IoThread
from server.providers.retry import with_retries
from server.providers.wyoming_peer import WyomingPeer, wyoming_module

SAMPLE_RATE_HZ: Final = 16000
MAX_AUDIO_S: Final = 60.0


class WyomingAsrStream:
    """One utterance on one connection (opened by the first ``accept``)."""

    def __init__(self, provider: WyomingAsr) -> None:
        self._provider = provider
        self._audio: list[Pcm] = []
        self._samples = 0
        self._queue: asyncio.Queue[Pcm | None] = asyncio.Queue()
        self._live: concurrent.futures.Future[Transcript] | None = None

    def accept(self, pcm: Pcm) -> Transcript | None:
        if self._samples >= MAX_AUDIO_S * SAMPLE_RATE_HZ:
            return None
        pcm = np.asarray(pcm, dtype=np.int16)
        self._audio.append(pcm)
        self._samples += len(pcm)
        io = self._provider.io
        if self._live is None:
            self._live = io.submit(self._provider.exchange(self._queue))
        io.call_soon(self._queue.put_nowait, pcm)
        return None  # the transcript comes at the end

    def finish(self) -> Transcript:
        live, self._live = self._live, None
        if live is None:
            return Transcript("", is_final=True)
        self._provider.io.call_soon(self._queue.put_nowait, None)
        s = self._provider.settings
        try:
            return live.result(s.timeout_s + s.connect_timeout_s + 1.0)
        except concurrent.futures.TimeoutError:
            live.cancel()
            error = ProviderError(
                "the Wyoming service sent no transcript in time",
                code=ErrorCode.ASR_TIMEOUT,
                retryable=True,
            )
        except ProviderError as exc:
            error = exc
        if not error.retryable or s.retries == 0:
            raise error
        return self._provider.transcribe(np.concatenate(self._audio), attempts=s.retries)

    async def finish_async(self) -> Transcript:
        """As :meth:`finish`, awaited on the caller's loop (the socket work is on the I/O
        thread)."""
        live, self._live = self._live, None
        if live is None:
            return Transcript("", is_final=True)
        self._provider.io.call_soon(self._queue.put_nowait, None)
        s = self._provider.settings
        try:
            return await asyncio.wait_for(
                asyncio.wrap_future(live), s.timeout_s + s.connect_timeout_s + 1.0
            )
        except TimeoutError:
            live.cancel()
            error = ProviderError(
                "the Wyoming service sent no transcript in time",
                code=ErrorCode.ASR_TIMEOUT,
                retryable=True,
            )
        except ProviderError as exc:
            error = exc
        if not error.retryable or s.retries == 0:
            raise error
        return await asyncio.to_thread(
            self._provider.transcribe, np.concatenate(self._audio), attempts=s.retries
        )

    def close(self) -> None:
        if self._live is not None:
            self._live.cancel()
            self._live = None
        self._audio, self._samples = [], 0


class WyomingAsr:
    """The provider; shared by all sessions (one connection per utterance)."""

    name = "wyoming"
    sample_rate_hz = SAMPLE_RATE_HZ

    def __init__(self, settings: AsrSettings | None = None) -> None:
        settings = settings or AsrSettings()
        self._asr = wyoming_module("asr")  # fails early, naming the extra
        self._audio = wyoming_module("audio")
        self.settings: WyomingAsrSettings = settings.wyoming
        self.language = upload_language(None, settings.language)
        self.where = f"tcp://{self.settings.host}:{self.settings.port}"
        self.capabilities = AsrCapabilities(
            grammar=False,
            free_text=True,
            partials=False,
            streaming=True,
            languages=frozenset(self.settings.languages),
        )
        self.io = IoThread("xiaozhi-asr-wyoming")

    def create_stream(self, phrases: Sequence[str] | None = None) -> WyomingAsrStream:
        """A stream for one utterance (``phrases`` are ignored: the service hears free text)."""
        return WyomingAsrStream(self)

    def transcribe(self, pcm: Pcm, *, attempts: int | None = None) -> Transcript:
        """Send a whole utterance (blocking; not from the I/O loop), retrying connect failures."""
        s = self.settings
        n = s.retries + 1 if attempts is None else attempts

        async def once() -> Transcript:
            queue: asyncio.Queue[Pcm | None] = asyncio.Queue()
            queue.put_nowait(pcm)
            queue.put_nowait(None)
            return await self.exchange(queue)

        budget = n * (s.timeout_s + s.connect_timeout_s + 1.0) + 0.2 * 2**n
        try:
            return self.io.run(with_retries(once, attempts=n, what="Wyoming ASR"), budget)
        except TimeoutError as exc:
            raise ProviderError(
                f"{self.where} sent no transcript in time",
                code=ErrorCode.ASR_TIMEOUT,
                retryable=True,
            ) from exc

    async def exchange(self, queue: asyncio.Queue[Pcm | None]) -> Transcript:
        """One request: transcribe + audio from ``queue`` (None ends it) → the transcript."""
        s, asr, audio = self.settings, self._asr, self._audio
        peer = await WyomingPeer.open(
            s.host,
            s.port,
            timeout_s=s.connect_timeout_s,
            unreachable=ErrorCode.ASR_UNREACHABLE,
            timeout_code=ErrorCode.ASR_TIMEOUT,
        )
        try:
            await peer.send(asr.Transcribe(name=s.model, language=self.language))
            await peer.send(audio.AudioStart(rate=SAMPLE_RATE_HZ, width=2, channels=1))
            sent_ms = 0
            while (pcm := await queue.get()) is not None:
                chunk = audio.AudioChunk(
                    rate=SAMPLE_RATE_HZ, width=2, channels=1,
                    audio=pcm.astype("<i2").tobytes(), timestamp=sent_ms,
                )  # fmt: skip
                await peer.send(chunk)
                sent_ms += len(pcm) * 1000 // SAMPLE_RATE_HZ
            await peer.send(audio.AudioStop(timestamp=sent_ms))
            return await self._transcript(peer)
        finally:
            await peer.close()

    async def _transcript(self, peer: WyomingPeer) -> Transcript:
        asr, pieces = self._asr, []
        language: str | None = self.language
        while True:
            event = await peer.receive(
                self.settings.timeout_s,
                code=ErrorCode.ASR_FAILED,
                timeout_code=ErrorCode.ASR_TIMEOUT,
            )
            if asr.Transcript.is_type(event.type):
                said: Any = asr.Transcript.from_event(event)
                return Transcript(str(said.text).strip(), True, language=said.language or language)
            if asr.TranscriptStart.is_type(event.type):
                language = asr.TranscriptStart.from_event(event).language or language
            elif asr.TranscriptChunk.is_type(event.type):
                pieces.append(asr.TranscriptChunk.from_event(event).text)
            elif asr.TranscriptStop.is_type(event.type):
                return Transcript("".join(pieces).strip(), True, language=language)

    def close(self) -> None:
        self.io.close()
