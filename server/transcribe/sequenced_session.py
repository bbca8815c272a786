"""A resumable ``/ws/asr`` session: the stream, its seq tracker and results outlive a socket.

A session is attached to at most one socket. When the socket drops, the session waits
``resume_window_s`` for a reconnect with its token (and the same JWT ``sub``); then it is closed
and its stream released. Results produced while detached are kept (finals, bounded) and sent
again on resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from server.session.connection import ChannelClosed
from server.transcribe.channel import TranscribeChannel
from server.transcribe.entities import extract_entities
from server.transcribe.sequenced_protocol import SeqTracker
from server.transcribe.streams import StreamFactory, StreamOwner, TranscriptionStream
from server.transcribe.transcriber import PartialText, Update

if TYPE_CHECKING:
    from server.storage import Storage

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
    """With a shared ``store`` (server.storage), every final is saved with the packet it covers,
    so the session can go on on another worker (:meth:`SessionRegistry.restore`): that worker
    starts a fresh stream, tells the client to resend after the last final's packet, and numbers
    its segments from ``segment_offset``."""

    def __init__(
        self, token: str, owner: StreamOwner, store: Storage | None = None, segment_offset: int = 0
    ) -> None:
        self.token = token
        self.owner = owner
        self.tracker = SeqTracker()
        self.channel: TranscribeChannel | None = None
        self.finals: deque[dict[str, Any]] = deque(maxlen=MAX_KEPT_FINALS)
        self.stream: TranscriptionStream | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self._store = store
        self.segment_offset = segment_offset

    async def deliver(self, updates: list[Update], seq: int) -> None:
        messages = [result_message(u, seq) for u in updates]
        for message in messages:
            message["segment"] += self.segment_offset
            if message["is_final"]:
                self.finals.append(message)
                await self._save(message)
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

    async def _save(self, final: dict[str, Any]) -> None:
        if self._store is None:
            return
        from server.storage import StorageError, TranscriptionState

        state = TranscriptionState(
            self.token, self.owner.user, self.owner.device_id, int(final["seq"]),
            int(final["segment"]) + 1, list(self.finals),
        )  # fmt: skip
        try:
            await self._store.save_transcription(state)
        except StorageError as exc:  # the session goes on here; only a move would lose it
            logger.warning("transcription session %s… not saved: %s", self.token[:6], exc)

    def finals_after(self, seq: int) -> list[dict[str, Any]]:
        return [m for m in self.finals if m["seq"] >= seq]


class SessionRegistry:
    """Open sessions by token."""

    def __init__(
        self, factory: StreamFactory, window_s: float, store: Storage | None = None
    ) -> None:
        self._factory = factory
        self.window_s = window_s
        self.sessions: dict[str, SequencedSession] = {}
        self._store = store

    def new(self, owner: StreamOwner) -> SequencedSession:
        """A session with a fresh stream; raises StreamsFull."""
        session = SequencedSession(secrets.token_urlsafe(18), owner, self._store)
        session.stream = self._factory.create(session.deliver, owner, endpoint="sequenced")
        self.sessions[session.token] = session
        return session

    def find(self, token: str, sub: str) -> SequencedSession | None:
        session = self.sessions.get(token)
        return session if session is not None and session.owner.user == sub else None

    async def restore(self, token: str, sub: str, remote: str) -> SequencedSession | None:
        """Take over a session another worker saved in the shared store (it died, or nginx
        sent the reconnect elsewhere): a fresh stream from the packet after the last final,
        the finals so far kept. None if unknown, not ``sub``'s, or too old. Raises StreamsFull."""
        if self._store is None:
            return None
        from server.storage import StorageError

        try:
            state = await self._store.transcription(token, sub)
        except StorageError as exc:
            logger.warning("transcription session %s… not restored: %s", token[:6], exc)
            return None
        if state is None or _age_s(state.updated_s) > self.window_s + 60:
            return None
        owner = StreamOwner(device_id=state.device_id or "", user=sub, remote=remote)
        session = SequencedSession(token, owner, self._store, state.next_segment)
        session.tracker.last_seq = state.committed_seq
        session.finals.extend(state.finals)
        session.stream = self._factory.create(session.deliver, owner, endpoint="sequenced")
        self.sessions[token] = session
        logger.info("transcription session %s… resumed here from packet %d", token[:6],
                    state.committed_seq + 1)  # fmt: skip
        return session

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
        if self._store is not None:
            from server.storage import StorageError

            with contextlib.suppress(StorageError):
                await self._store.end_transcription(session.token)

    async def close(self) -> None:
        for session in list(self.sessions.values()):
            await self.end(session)


def _age_s(updated_s: float) -> float:
    return time.time() - updated_s
