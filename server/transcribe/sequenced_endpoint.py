"""``/ws/asr``: the sequenced packet protocol (see :mod:`.sequenced_protocol` for the wire).

The handshake (JWT → 401, capacity → 503) is checked in :mod:`.routes`; here: the subprotocol
(else close 1003 "Unsupported Protocol"), new or resumed session, the reader loop with the idle
timeout, the heartbeat task, and the end of the audio.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any, Final

import numpy as np

from server.session.connection import ChannelClosed
from server.transcribe.channel import TranscribeChannel
from server.transcribe.jwt_auth import Claims
from server.transcribe.sequenced_protocol import (
    SUBPROTOCOL,
    AudioPacket,
    EndOfAudio,
    SequencedDecoder,
    SequencedProtocolError,
)
from server.transcribe.sequenced_session import SequencedSession, SessionRegistry
from server.transcribe.streams import StreamOwner, StreamsFull

logger = logging.getLogger(__name__)

CLOSE_UNSUPPORTED: Final = 1003
CLOSE_IDLE: Final = 4408
CLOSE_REPLACED: Final = 4409
CLOSE_TRY_LATER: Final = 1013
CLOSE_BAD_INPUT: Final = 1007


class SequencedEndpoint:
    path = "/ws/asr"

    def __init__(
        self, registry: SessionRegistry, *, heartbeat_s: float, idle_timeout_s: float
    ) -> None:
        self.registry = registry
        self._heartbeat_s = heartbeat_s
        self._idle_s = idle_timeout_s

    async def serve(
        self, channel: TranscribeChannel, claims: Claims, query: dict[str, str], remote: str
    ) -> None:
        if channel.subprotocol != SUBPROTOCOL:
            await channel.close(CLOSE_UNSUPPORTED, "Unsupported Protocol")
            return
        session, resumed = await self._session(claims, query, remote)
        if session is None:
            await channel.close(CLOSE_TRY_LATER, "transcription streams are all busy")
            return
        replaced = session.attach(channel)
        if replaced is not None:
            with contextlib.suppress(Exception):
                await replaced.close(CLOSE_REPLACED, "replaced by a newer connection")
        await self._send(channel, self._greeting(session, resumed))
        if resumed:
            for message in session.finals_after(_int(query.get("last_seq"), -1)):
                await self._send(channel, message)
        heartbeat = asyncio.get_running_loop().create_task(self._heartbeat(channel))
        ended = False
        try:
            ended = await self._read(channel, session)
        except ChannelClosed:
            pass
        finally:
            heartbeat.cancel()
            if ended:
                await self.registry.end(session)
            else:
                self.registry.detach(session, channel)

    async def _session(
        self, claims: Claims, query: dict[str, str], remote: str
    ) -> tuple[SequencedSession | None, bool]:
        token = query.get("session", "")
        if token:
            found = self.registry.find(token, claims.sub)
            try:  # else saved by another worker in the shared store?
                found = found or await self.registry.restore(token, claims.sub, remote)
            except StreamsFull:
                return None, False
            if found is not None:
                return found, True
        owner = StreamOwner(
            device_id=query.get("device-id", claims.device), user=claims.sub, remote=remote
        )
        try:
            return self.registry.new(owner), False
        except StreamsFull:
            return None, False

    def _greeting(self, session: SequencedSession, resumed: bool) -> dict[str, Any]:
        return {
            "type": "control",
            "action": "session",
            "session": session.token,
            "resumed": resumed,
            "last_seq": session.tracker.last_seq,
            "heartbeat_s": self._heartbeat_s,
            "resume_window_s": self.registry.window_s,
        }

    async def _read(self, channel: TranscribeChannel, session: SequencedSession) -> bool:
        """Read until the end of the audio (True) or the socket goes (False)."""
        decoder = SequencedDecoder()
        stream = session.stream
        assert stream is not None
        while True:
            try:
                message = await asyncio.wait_for(channel.recv(), self._idle_s)
            except TimeoutError:
                await channel.close(CLOSE_IDLE, "idle timeout")
                return False
            try:
                event = decoder.feed(message)
            except SequencedProtocolError as exc:
                await self._send(channel, {"type": "error", "code": exc.code, "message": str(exc)})
                await channel.close(CLOSE_BAD_INPUT, str(exc)[:120])
                return False
            if isinstance(event, AudioPacket):
                verdict = session.tracker.check(event.seq)
                if verdict == "new":
                    await stream.put(np.frombuffer(event.pcm, dtype="<i2"), event.seq)
                elif verdict == "gap":
                    await self._send(
                        channel,
                        {
                            "type": "control",
                            "action": "nack",
                            "expected": session.tracker.last_seq + 1,
                            "got": event.seq,
                        },
                    )
            elif isinstance(event, EndOfAudio):
                await stream.finish(session.tracker.last_seq)
                t = session.tracker
                await self._send(
                    channel,
                    {
                        "type": "control",
                        "action": "ended",
                        "last_seq": t.last_seq,
                        "packets": t.packets,
                        "duplicates": t.duplicates,
                        "gaps": t.gaps,
                    },
                )
                await channel.close(1000, "done")
                return True

    async def _heartbeat(self, channel: TranscribeChannel) -> None:
        with contextlib.suppress(ChannelClosed):
            while True:
                await asyncio.sleep(self._heartbeat_s)
                await self._send(channel, {"type": "heartbeat"})

    @staticmethod
    async def _send(channel: TranscribeChannel, message: dict[str, Any]) -> None:
        await channel.send(json.dumps(message, ensure_ascii=False))


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default
