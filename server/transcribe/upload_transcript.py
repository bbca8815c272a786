"""Transcribing an upload while it arrives, when its bytes are audio the pipeline can read.

``format=pcm`` (16 kHz 16-bit little-endian mono) or ``format=wav`` (the same inside RIFF;
the header is skipped up to the ``data`` chunk, other WAV formats are stored untranscribed).
Browser blobs (webm/ogg) are stored only: there is no demuxer here. The bytes are fed in index
order as the reassembly appends them, through one transcription stream that lives as long as
the upload (reconnects included); each final goes to the uploader as a ``result`` message and
to ``transcript.jsonl`` beside the recording.
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
from pathlib import Path
from typing import Any, Final

import numpy as np

from server.recordings.chunked import DATA
from server.transcribe.channel import TranscribeChannel
from server.transcribe.sequenced_session import result_message
from server.transcribe.streams import StreamFactory, StreamOwner, StreamsFull, TranscriptionStream
from server.transcribe.transcriber import SegmentFinal, Update

FORMATS: Final = frozenset({"pcm", "wav"})
MAX_WAV_HEADER: Final = 4096


def wav_data_offset(head: bytes) -> int | None:
    """Where the samples of a 16 kHz mono 16-bit WAV start; None: not such a WAV (yet)."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    at, fmt_ok = 12, False
    while at + 8 <= len(head):
        kind, size = head[at : at + 4], struct.unpack_from("<I", head, at + 4)[0]
        if kind == b"fmt " and at + 8 + 16 <= len(head):
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", head, at + 8)
            fmt_ok = tag == 1 and channels == 1 and rate == 16000 and bits == 16
        elif kind == b"data":
            return at + 8 if fmt_ok else None
        at += 8 + size + (size & 1)
    return None


class UploadTranscription:
    """One upload's transcription; ``channel`` is the uploader's socket of the moment."""

    def __init__(self, stream: TranscriptionStream, folder: Path, fmt: str) -> None:
        self.stream = stream
        self._folder = folder
        self._fmt = fmt
        self._fed = 0
        self._start: int | None = 0 if fmt == "pcm" else None
        self._odd = b""
        self.channel: TranscribeChannel | None = None
        self._tag = 0
        self.failed = False

    @classmethod
    def open(
        cls, streams: StreamFactory, folder: Path, fmt: str, owner: StreamOwner
    ) -> UploadTranscription | None:
        if fmt not in FORMATS:
            return None
        holder: list[UploadTranscription] = []

        async def deliver(updates: list[Update], tag: int) -> None:
            if holder:
                await holder[0].deliver(updates, tag)

        try:
            stream = streams.create(deliver, owner, endpoint="upload", record=False)
        except StreamsFull:
            return None
        holder.append(cls(stream, folder, fmt))
        return holder[0]

    async def feed(self, size: int) -> None:
        """Feed the bytes the reassembly appended up to ``size`` (total bytes in order)."""
        if self.failed or size <= self._fed:
            return
        data = await asyncio.to_thread(self._read, self._fed, size)
        self._fed = size
        if self._start is None:  # a WAV whose header is not complete yet
            offset = wav_data_offset(self._odd + data)
            if offset is None:
                self._odd += data
                if len(self._odd) > MAX_WAV_HEADER:
                    self.failed = True  # not a 16 kHz mono 16-bit WAV: stored, not transcribed
                return
            data, self._odd, self._start = (self._odd + data)[offset:], b"", offset
        data = self._odd + data
        cut = len(data) - len(data) % 2
        self._odd = data[cut:]
        if cut:
            self._tag += 1
            await self.stream.put(np.frombuffer(data[:cut], dtype="<i2"), self._tag)

    async def finish(self) -> None:
        if not self.failed:
            await self.stream.finish(self._tag)

    async def close(self) -> None:
        await self.stream.close()

    async def deliver(self, updates: list[Update], tag: int) -> None:
        finals = [u for u in updates if isinstance(u, SegmentFinal)]
        if finals:
            await asyncio.to_thread(self._write_finals, finals)
        channel = self.channel
        if channel is None:
            return
        for update in finals:
            message: dict[str, Any] = result_message(update, tag)
            message.pop("seq")
            try:
                await channel.send(json.dumps(message, ensure_ascii=False))
            except Exception:
                return

    def _read(self, start: int, end: int) -> bytes:
        with open(self._folder / DATA, "rb") as f:
            f.seek(start)
            return f.read(end - start)

    def _write_finals(self, finals: list[SegmentFinal]) -> None:
        with open(self._folder / "transcript.jsonl", "a", encoding="utf-8") as f:
            for final in finals:
                line = {
                    "segment": final.segment,
                    "text": final.text,
                    "start_ms": round(final.start_ms),
                    "end_ms": round(final.end_ms),
                }
                f.write(json.dumps(line, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())


class UploadTranscriptions:
    """The transcriptions of open uploads; one outlives a dropped socket for ``window_s``."""

    def __init__(self, streams: StreamFactory, window_s: float) -> None:
        self._streams = streams
        self._window_s = window_s
        self._open: dict[str, UploadTranscription] = {}
        self._expiry: dict[str, asyncio.TimerHandle] = {}

    def attach(
        self, rec_id: str, folder: Path, fmt: str, owner: StreamOwner, channel: TranscribeChannel
    ) -> UploadTranscription | None:
        timer = self._expiry.pop(rec_id, None)
        if timer is not None:
            timer.cancel()
        found = self._open.get(rec_id)
        if found is None:
            found = UploadTranscription.open(self._streams, folder, fmt, owner)
            if found is None:
                return None
            self._open[rec_id] = found
        found.channel = channel
        return found

    def detach(self, rec_id: str, channel: TranscribeChannel) -> None:
        found = self._open.get(rec_id)
        if found is None or found.channel is not channel:
            return
        found.channel = None
        loop = asyncio.get_running_loop()
        self._expiry[rec_id] = loop.call_later(
            self._window_s, lambda: loop.create_task(self.end(rec_id))
        )

    async def end(self, rec_id: str) -> None:
        timer = self._expiry.pop(rec_id, None)
        if timer is not None:
            timer.cancel()
        found = self._open.pop(rec_id, None)
        if found is not None:
            await found.close()

    async def close(self) -> None:
        for rec_id in list(self._open):
            await self.end(rec_id)
