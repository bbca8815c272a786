"""Transcription streams built from the server's shared providers, executor and admission.

:class:`StreamFactory` is made once by the composition root with the shared VAD/ASR providers
(the same objects, pools and executor as the assistant) and hands each connection a
:class:`TranscriptionStream`: a :class:`~.stream_worker.StreamWorker` over a
:class:`~.transcriber.PcmTranscriber`, holding one admission slot, optionally recording.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol

from protocol.audio import Pcm
from server.config import VadSettings
from server.providers.base import AsrProvider, VadProvider
from server.transcribe.channel import Admission
from server.transcribe.errors import TranscribeError
from server.transcribe.stream_worker import Deliver, StreamWorker, Transcribing
from server.transcribe.transcriber import PcmTranscriber, SegmentFinal, Update


class StreamsFull(TranscribeError):
    """Every admission slot is taken."""

    def __init__(self, message: str) -> None:
        super().__init__("streams-full", message)


@dataclass(frozen=True, slots=True)
class StreamOwner:
    """Who a stream belongs to (for recordings and logs)."""

    device_id: str = ""
    user: str = ""
    remote: str = ""


RecorderFactory = Callable[[StreamOwner, str], "RecordingSink | None"]
"""``(owner, endpoint) -> sink``: None when this owner/endpoint does not record."""


class RecordingSink(Protocol):
    """What a stream writes recordings to (implemented in :mod:`server.recordings`); called
    from the executor."""

    def append(self, pcm: Pcm) -> None: ...

    def segment(self, final: SegmentFinal) -> None: ...

    def close(self) -> None: ...


class _RecordingTranscriber:
    """Records the audio (and the finals) in the worker's executor step, then transcribes."""

    def __init__(self, inner: PcmTranscriber, sink: RecordingSink) -> None:
        self._inner, self._sink = inner, sink

    def feed(self, pcm: Pcm, arrival_s: float) -> list[Update]:
        self._sink.append(pcm)
        return self._note(self._inner.feed(pcm, arrival_s))

    def finish(self, arrival_s: float) -> list[Update]:
        return self._note(self._inner.finish(arrival_s))

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            self._sink.close()

    def _note(self, updates: list[Update]) -> list[Update]:
        for update in updates:
            if isinstance(update, SegmentFinal):
                self._sink.segment(update)
        return updates


class TranscriptionStream:
    """One stream: ``put`` audio, ``finish`` it, ``close`` to release its slot and decoders."""

    def __init__(self, worker: StreamWorker, admission: Admission) -> None:
        self.worker = worker
        self._admission = admission
        self._closed = False

    async def put(self, pcm: Pcm, tag: int) -> None:
        await self.worker.put(pcm, tag)

    async def finish(self, tag: int) -> None:
        await self.worker.finish(tag)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self.worker.close()
        finally:
            self._admission.release()


class StreamFactory:
    """Shared by every transcription endpoint of one server."""

    def __init__(
        self,
        vad: VadProvider,
        asr: AsrProvider,
        vad_settings: VadSettings,
        executor: Executor,
        admission: Admission,
        *,
        phrases: Sequence[str] = (),
        queue_packets: int = 64,
        recorder: RecorderFactory | None = None,
    ) -> None:
        self.vad, self.asr, self.vad_settings = vad, asr, vad_settings
        self.executor = executor
        self.admission = admission
        self.phrases = tuple(phrases)
        self.queue_packets = queue_packets
        self.recorder = recorder

    def create(
        self, deliver: Deliver, owner: StreamOwner, *, endpoint: str, record: bool = True
    ) -> TranscriptionStream:
        """A started stream (recorded when ``record`` and the owner/endpoint opted in); raises
        :class:`StreamsFull` when no slot is free."""
        if not self.admission.acquire():
            raise StreamsFull(f"{self.admission.limit} transcription streams active")
        sink = self.recorder(owner, endpoint) if self.recorder is not None and record else None

        def make() -> Transcribing:
            inner = PcmTranscriber(self.vad, self.asr, self.vad_settings, phrases=self.phrases)
            return inner if sink is None else _RecordingTranscriber(inner, sink)

        worker = StreamWorker(make, self.executor, deliver, max_items=self.queue_packets)
        worker.start()
        return TranscriptionStream(worker, self.admission)

    @contextlib.asynccontextmanager
    async def open(
        self, deliver: Deliver, owner: StreamOwner, *, endpoint: str
    ) -> AsyncIterator[TranscriptionStream]:
        stream = self.create(deliver, owner, endpoint=endpoint)
        try:
            yield stream
        finally:
            await stream.close()
