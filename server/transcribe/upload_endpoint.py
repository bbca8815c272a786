"""``/ws/record``: a browser recorder streams a recording live in indexed chunks.

Handshake: ``Authorization: Bearer <JWT>`` (or ``?token=``), ``?device-id=``; ``?recording=ID``
continues an upload after a reconnect (same JWT ``sub``). Messages:

* client → server: ``{"index": N, "data": "<base64>"}`` (any order, duplicates allowed),
  ``{"action": "end"}``;
* server → client: first ``{"type":"recording","id","next_index","pending":[...]}``; one
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

    def __init__(self, store: RecordingStore, *, idle_timeout_s: float = 90.0) -> None:
        self._store = store
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
        try:
            await self._serve(channel, info, upload, lock)
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
    ) -> None:
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
                    return
                try:
                    parsed = parse_upload_message(message)
                    if parsed is None:
                        if await self._end(channel, info, upload, lock):
                            return
                        continue
                    index, data = parsed
                    async with lock:
                        stored = await asyncio.to_thread(upload.put, index, data)
                except (UploadError, UploadRefused) as exc:
                    await self._send(
                        channel, {"type": "error", "code": exc.code, "message": str(exc)}
                    )
                    await channel.close(1007, str(exc)[:120])
                    return
                await self._send(channel, {"type": "ack", "index": index, "duplicate": not stored})
        except ChannelClosed:
            return

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
    ) -> bool:
        async with lock:
            missing = upload.missing()
            if missing:
                await self._send(
                    channel, {"type": "error", "code": "missing-chunks", "missing": missing[:1000]}
                )
                return False
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
