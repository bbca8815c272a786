"""``/ws/record``: a browser recorder streams a recording live in indexed chunks.

Handshake: ``Authorization: Bearer <JWT>`` (or ``?token=``), ``?device-id=``; ``?recording=ID``
continues an upload after a reconnect (same JWT ``sub``). Messages:

* client → server: ``{"index": N, "data": "<base64>"}`` (any order, duplicates allowed),
  ``{"action": "end"}``;
* server → client: first ``{"type":"recording","id","next_index","pending":[...]}``; for a
  ``format=pcm``/``wav`` upload, ``{"type":"result",...}`` finals as the audio arrives
  (:mod:`.upload_transcript`); one
  ``{"type":"ack","index":N,"duplicate":bool}`` per chunk once it is on disk (fsync'd);
  at the end ``{"type":"done","id","bytes","chunks","sha256"}`` and close 1000, or
  ``{"type":"error","code":"missing-chunks","missing":[...]}`` (the socket stays open for
  them); bad input gets ``{"type":"error","code",...}`` and close 1007.

The stored ``upload.bin`` is the chunks' bytes in index order, byte for byte.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from typing import Any

from server.recordings.chunked import ChunkedUpload, UploadRefused
from server.recordings.store import RecordingInfo, RecordingStore
from server.session.connection import ChannelClosed
from server.transcribe.channel import TranscribeChannel
from server.transcribe.errors import TranscribeError
from server.transcribe.jwt_auth import Claims
from server.transcribe.streams import StreamOwner
from server.transcribe.upload_transcript import UploadTranscription, UploadTranscriptions

logger = logging.getLogger(__name__)


class UploadError(TranscribeError):
    """Bad upload input (``code``: bad-message, bad-json, bad-index, bad-data)."""


def parse_upload_message(message: str | bytes) -> tuple[int, bytes] | None:
    """``(index, data)`` of a chunk, None for ``{"action":"end"}``; raises UploadError."""
    if isinstance(message, bytes):
        raise UploadError("bad-message", "send chunks as JSON text {index, data(base64)}")
    try:
        obj = json.loads(message)
    except json.JSONDecodeError as exc:
        raise UploadError("bad-json", f"not JSON: {exc.msg}") from None
    except RecursionError:  # "[[[[…" nested deeper than the interpreter's stack (fuzzer)
        raise UploadError("bad-json", "not JSON: nested too deeply") from None
    if not isinstance(obj, dict):
        raise UploadError("bad-json", "messages must be JSON objects")
    if obj.get("action") == "end":
        return None
    index, data = obj.get("index"), obj.get("data")
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise UploadError("bad-index", "index must be a non-negative integer")
    if not isinstance(data, str):
        raise UploadError("bad-data", "data must be a base64 string")
    try:
        return index, base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise UploadError("bad-data", "data is not valid base64") from None


class UploadEndpoint:
    path = "/ws/record"

    def __init__(
        self,
        store: RecordingStore,
        *,
        idle_timeout_s: float = 90.0,
        transcriptions: UploadTranscriptions | None = None,
    ) -> None:
        self._store = store
        self.transcriptions = transcriptions
        """Transcribes ``format=pcm``/``wav`` uploads as they arrive (None: store only)."""
        self._idle_s = idle_timeout_s
        self._open: dict[str, tuple[ChunkedUpload, asyncio.Lock]] = {}
        """Uploads with a socket on them now."""
        self._users: dict[str, int] = {}

    async def serve(
        self, channel: TranscribeChannel, claims: Claims, query: dict[str, str]
    ) -> None:
        info = await self._recording(claims, query)
        if info is None:
            await self._send(
                channel,
                {
                    "type": "error",
                    "code": "unknown-recording",
                    "message": "no such recording of yours",
                },
            )
            await channel.close(1008, "unknown recording")
            return
        if info.id not in self._open:  # (re)opened from disk: the journal says what is there
            upload_ = await asyncio.to_thread(ChunkedUpload, info.folder)
            self._open.setdefault(info.id, (upload_, asyncio.Lock()))
        upload, lock = self._open[info.id]
        self._users[info.id] = self._users.get(info.id, 0) + 1
        t = self.transcriptions
        owner = StreamOwner(device_id=info.device_id, user=info.user)
        fmt = str(info.meta.get("format", ""))
        transcription = t.attach(info.id, info.folder, fmt, owner, channel) if t else None
        try:
            if await self._serve(channel, info, upload, lock, transcription) and t:
                await t.end(info.id)
            elif t:
                t.detach(info.id, channel)
        finally:
            self._users[info.id] -= 1
            if not self._users[info.id]:  # nobody on it: forget it (a resume reopens it)
                del self._users[info.id]
                self._open.pop(info.id, None)

    async def _serve(
        self,
        channel: TranscribeChannel,
        info: RecordingInfo,
        upload: ChunkedUpload,
        lock: asyncio.Lock,
        transcription: UploadTranscription | None,
    ) -> bool:
        """Serve one socket; True once the upload is complete."""
        await self._send(
            channel,
            {
                "type": "recording",
                "id": info.id,
                "next_index": upload.next_index,
                "pending": sorted(upload.pending),
            },
        )
        try:
            while True:
                try:
                    message = await asyncio.wait_for(channel.recv(), self._idle_s)
                except TimeoutError:
                    await channel.close(4408, "idle timeout")
                    return False
                try:
                    parsed = parse_upload_message(message)
                    if parsed is None:
                        if await self._end(channel, info, upload, lock, transcription):
                            return True
                        continue
                    index, data = parsed
                    async with lock:
                        stored = await asyncio.to_thread(upload.put, index, data)
                        if transcription is not None:
                            await transcription.feed(upload.size)
                except (UploadError, UploadRefused) as exc:
                    await self._send(
                        channel, {"type": "error", "code": exc.code, "message": str(exc)}
                    )
                    await channel.close(1007, str(exc)[:120])
                    return False
                await self._send(channel, {"type": "ack", "index": index, "duplicate": not stored})
        except ChannelClosed:
            return False

    async def _recording(self, claims: Claims, query: dict[str, str]) -> RecordingInfo | None:
        rec_id = query.get("recording", "")
        if rec_id:
            found = await asyncio.to_thread(self._store.find, rec_id)
            return found if found is not None and found.user == claims.sub else None
        device = query.get("device-id") or claims.device or "unknown"
        fmt = query.get("format", "")[:32]
        return await asyncio.to_thread(
            self._store.create, device, claims.sub, "upload", format=fmt, complete=False
        )

    async def _end(
        self,
        channel: TranscribeChannel,
        info: RecordingInfo,
        upload: ChunkedUpload,
        lock: asyncio.Lock,
        transcription: UploadTranscription | None,
    ) -> bool:
        async with lock:
            missing = upload.missing()
            if missing:
                await self._send(
                    channel, {"type": "error", "code": "missing-chunks", "missing": missing[:1000]}
                )
                return False
            if transcription is not None:  # its last finals go out before `done`
                await transcription.finish()
            digest = await asyncio.to_thread(upload.sha256)
            await asyncio.to_thread(
                self._store.update,
                info,
                complete=True,
                bytes=upload.size,
                chunks=upload.next_index,
                sha256=digest,
            )
        await self._send(
            channel,
            {
                "type": "done",
                "id": info.id,
                "bytes": upload.size,
                "chunks": upload.next_index,
                "sha256": digest,
            },
        )
        await channel.close(1000, "done")
        return True

    @staticmethod
    async def _send(channel: TranscribeChannel, message: dict[str, Any]) -> None:
        await channel.send(json.dumps(message))
