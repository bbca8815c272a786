"""Recording an assistant session: uplink and downlink Opus as sent, plus what was said.

:class:`RecordingChannel` wraps the session's :class:`~server.session.connection.Channel`
(composition root: the session code does not know) and sees every message both ways:

* binary frames (protocol v1/v2/v3, the version from the device hello or the handshake) →
  their Opus packets into ``uplink.opus`` / ``downlink.opus`` without re-encoding;
* ``stt`` text (the user) and ``tts`` ``sentence_start`` text (the assistant) →
  ``transcript.jsonl`` lines ``{"role", "text", "t_ms"}`` (ms since the session began).

Pages are written (and fsync'd) each second of audio and at every turn boundary, in a thread
(never on the event loop), so a crash loses at most the last second.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from typing import Any, Final

from protocol.binary import FRAME_TYPE_OPUS, decode_frame
from protocol.errors import BinaryFrameError
from server.recordings.ogg_opus import OggPacketWriter
from server.recordings.store import RecordingInfo, RecordingStore
from server.session.connection import Channel

logger = logging.getLogger(__name__)

PAGE_MS: Final = 1000.0


class AssistantRecording:
    """The files of one assistant session; every method is blocking except :meth:`note_*`."""

    def __init__(self, store: RecordingStore, info: RecordingInfo) -> None:
        self._store, self.info = store, info
        self.uplink = OggPacketWriter(info.folder / "uplink.opus", 16000)
        self.downlink = OggPacketWriter(info.folder / "downlink.opus", 24000)
        self._transcript = open(info.folder / "transcript.jsonl", "a", encoding="utf-8")  # noqa: SIM115

    def line(self, role: str, text: str, t_ms: float) -> None:
        entry = {"role": role, "text": text, "t_ms": round(t_ms)}
        self._transcript.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._transcript.flush()
        os.fsync(self._transcript.fileno())

    def flush(self) -> None:
        self.uplink.flush()
        self.downlink.flush()

    def close(self) -> None:
        if self._transcript.closed:
            return
        self.uplink.close()
        self.downlink.close()
        self._transcript.close()
        self._store.update(
            self.info,
            complete=True,
            uplink_ms=round(self.uplink.duration_ms),
            downlink_ms=round(self.downlink.duration_ms),
        )


class RecordingChannel:
    """A :class:`Channel` that records what passes through it (see the module docstring)."""

    def __init__(self, inner: Channel, recording: AssistantRecording, version: int | None) -> None:
        self._inner = inner
        self._rec = recording
        self._version = version or 1
        self._start = time.monotonic()
        self._jobs: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._closed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def recv(self) -> str | bytes:
        message = await self._inner.recv()
        if isinstance(message, bytes):
            self._audio(self._rec.uplink, message)
        else:
            self._device_text(message)
        return message

    async def send(self, data: str | bytes) -> None:
        await self._inner.send(data)
        if isinstance(data, bytes):
            self._audio(self._rec.downlink, data)
        else:
            self._server_text(data)

    async def close(self, code: int, reason: str) -> None:
        try:
            await self._inner.close(code, reason)
        finally:
            await self.finish()

    async def finish(self) -> None:
        """Write what is buffered and close the files (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._job("close", None)
        if self._writer is not None:
            await self._writer

    # ------------------------------------------------------------------ internals

    def _audio(self, writer: OggPacketWriter, message: bytes) -> None:
        if self._closed:
            return
        try:
            frame = decode_frame(message, self._version)
        except BinaryFrameError:  # a frame the session itself refuses: nothing to record
            return
        if frame.frame_type != FRAME_TYPE_OPUS or not frame.payload:
            return
        writer.add(frame.payload)
        if writer.buffered_ms >= PAGE_MS:
            self._job("flush", None)

    def _device_text(self, text: str) -> None:
        data = _json(text)
        if data.get("type") == "hello" and isinstance(data.get("version"), int):
            self._version = data["version"]
        if data.get("type") == "listen" and data.get("state") == "stop":
            self._job("flush", None)

    def _server_text(self, text: str) -> None:
        data = _json(text)
        kind, t_ms = data.get("type"), (time.monotonic() - self._start) * 1000
        if kind == "stt" and isinstance(data.get("text"), str):
            self._job("line", ("user", data["text"], t_ms))
        elif kind == "tts" and data.get("state") == "sentence_start" and data.get("text"):
            self._job("line", ("assistant", str(data["text"]), t_ms))
        elif kind == "tts" and data.get("state") == "stop":
            self._job("flush", None)

    def _job(self, kind: str, arg: Any) -> None:
        if self._closed and kind != "close":
            return
        self._jobs.put_nowait((kind, arg))
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        while True:
            kind, arg = await self._jobs.get()
            try:
                if kind == "line":
                    await asyncio.to_thread(self._rec.line, *arg)
                elif kind == "flush":
                    await asyncio.to_thread(self._rec.flush)
                else:
                    await asyncio.to_thread(self._rec.close)
                    return
            except OSError:
                logger.exception("recording %s: writing failed", self._rec.info.id)


def _json(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
