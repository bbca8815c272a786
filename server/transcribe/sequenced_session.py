"""A resumable ``/ws/asr`` session: the stream, its seq tracker and results outlive a socket.

A session is attached to at most one socket. When the socket drops, the session waits
``resume_window_s`` for a reconnect with its token (and the same JWT ``sub``); then it is closed
and its stream released. Results produced while detached are kept (finals, bounded) and sent
again on resume.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections import deque
from collections.abc import Callable
from typing import Any, Final

from server.session.connection import ChannelClosed
from server.transcribe.channel import TranscribeChannel
from server.transcribe.entities import extract_entities
from server.transcribe.sequenced_protocol import SeqTracker
from server.transcribe.streams import StreamFactory, StreamOwner, TranscriptionStream
from server.transcribe.transcriber import PartialText, Update

logger = logging.getLogger(__name__)

MAX_KEPT_FINALS: Final = 2000


def result_message(update: Update, seq: int) -> dict[str, Any]:
    """The ``result`` message of one update."""
    if isinstance(update, PartialText):
        return {
            "type": "result",
            "text": update.text,
            "seq": seq,
            "is_final": False,
            "segment": update.segment,
            "confidence": None,
            "nbest": [],
            "entities": [],
        }
    nbest = [{"text": a.text, "confidence": round(a.confidence, 4)} for a in update.alternatives]
    confidence = update.confidence
    if not nbest and update.text:
        nbest = [{"text": update.text, "confidence": confidence}]
    return {
        "type": "result",
        "text": update.text,
        "seq": seq,
        "is_final": True,
        "segment": update.segment,
        "confidence": None if confidence is None else round(confidence, 4),
        "nbest": nbest,
        "entities": [e.to_json() for e in extract_entities(update.text)],
        "start_ms": round(update.start_ms),
        "end_ms": round(update.end_ms),
        "rejected": update.rejected,
        "language": update.language,
    }


class SequencedSession:
    def __init__(self, token: str, owner: StreamOwner) -> None:
        self.token = token
        self.owner = owner
        self.tracker = SeqTracker()
        self.channel: TranscribeChannel | None = None
        self.finals: deque[dict[str, Any]] = deque(maxlen=MAX_KEPT_FINALS)
        self.stream: TranscriptionStream | None = None
        self._expiry: asyncio.TimerHandle | None = None

    async def deliver(self, updates: list[Update], seq: int) -> None:
        messages = [result_message(u, seq) for u in updates]
        for message in messages:
            if message["is_final"]:
                self.finals.append(message)
        channel = self.channel
        if channel is None:
            return
        try:
            for message in messages:
                await channel.send(json.dumps(message, ensure_ascii=False))
        except ChannelClosed:
            pass

    def attach(self, channel: TranscribeChannel) -> TranscribeChannel | None:
        """Attach ``channel``; returns the socket it replaces (to close), if any."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        old, self.channel = self.channel, channel
        return old if old is not channel else None

    def detach(
        self, channel: TranscribeChannel, window_s: float, expire: Callable[[], Any]
    ) -> None:
        """The socket is gone: keep the session for ``window_s``, then ``expire``."""
        if self.channel is not channel:
            return
        self.channel = None
        self._expiry = asyncio.get_running_loop().call_later(window_s, expire)

    def finals_after(self, seq: int) -> list[dict[str, Any]]:
        return [m for m in self.finals if m["seq"] >= seq]


class SessionRegistry:
    """Open sessions by token."""

    def __init__(self, factory: StreamFactory, window_s: float) -> None:
        self._factory = factory
        self.window_s = window_s
        self.sessions: dict[str, SequencedSession] = {}

    def new(self, owner: StreamOwner) -> SequencedSession:
        """A session with a fresh stream; raises StreamsFull."""
        session = SequencedSession(secrets.token_urlsafe(18), owner)
        session.stream = self._factory.create(session.deliver, owner, endpoint="sequenced")
        self.sessions[session.token] = session
        return session

    def find(self, token: str, sub: str) -> SequencedSession | None:
        session = self.sessions.get(token)
        return session if session is not None and session.owner.user == sub else None

    def detach(self, session: SequencedSession, channel: TranscribeChannel) -> None:
        session.detach(channel, self.window_s, lambda: self._expire(session))

    def _expire(self, session: SequencedSession) -> None:
        logger.info("transcription session %s… expired unresumed", session.token[:6])
        asyncio.get_running_loop().create_task(self.end(session))

    async def end(self, session: SequencedSession) -> None:
        if self.sessions.get(session.token) is session:
            del self.sessions[session.token]
        stream, session.stream = session.stream, None
        if stream is not None:
            await stream.close()

    async def close(self) -> None:
        for session in list(self.sessions.values()):
            await self.end(session)
