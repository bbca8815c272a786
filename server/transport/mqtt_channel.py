"""One MQTT + UDP session as a :class:`~server.session.connection.Channel`.

``recv()`` returns the board's JSON (``str``, from MQTT) and its decrypted Opus packets
(``bytes``, from UDP) in arrival order; ``send(str)`` publishes to the board's reply topic,
``send(bytes)`` encrypts one Opus packet into a UDP datagram. So the one
:class:`~server.session.connection.Connection` runs these sessions unchanged.

``close()`` is the session's end as the board must see it: ``goodbye`` with the session id
(protocol.md §4.2), unless the board said goodbye itself (no ping-pong) or is gone.

Text and audio travel on two paths here (TCP through the broker, UDP straight in), so a board's
last datagrams can arrive after the ``listen stop`` it published after them. A ``listen stop``
is therefore held for ``STOP_GRACE_S`` (later text waits behind it, audio does not), so the
end of a push-to-talk utterance is not cut off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from protocol.messages import ServerGoodbye, encode_message
from server.session.connection import ChannelClosed
from server.transport.udp import UdpAudioEndpoint, UdpAudioLink

logger = logging.getLogger(__name__)

Publish = Callable[[str], Awaitable[None]]

STOP_GRACE_S = 0.12
"""How long a ``listen stop`` waits for audio still in flight on UDP (s)."""

MAX_QUEUED_AUDIO = 64
"""Uplink packets waiting for the session reader (3.8 s); beyond it the packet is dropped."""


class _Closed:
    def __init__(self, reason: str) -> None:
        self.reason = reason


class MqttUdpChannel:
    """Text over MQTT, audio over UDP, one session id."""

    def __init__(
        self,
        session_id: str,
        publish: Publish,
        endpoint: UdpAudioEndpoint,
        link: UdpAudioLink,
    ) -> None:
        self.session_id = session_id
        self._publish, self._endpoint, self.link = publish, endpoint, link
        self._queue: asyncio.Queue[str | bytes | _Closed] = asyncio.Queue()
        self._audio_queued = 0
        self.closed = False
        self.device_said_goodbye = False
        self._held: list[str] | None = None
        """Text waiting behind a ``listen stop`` (None: nothing held)."""
        endpoint.register(link, self.push_audio)

    # ------------------------------------------------------------------ fed by the gateway

    def push_text(self, text: str, *, goodbye: bool = False, stop: bool = False) -> None:
        """One JSON message; ``stop``: a ``listen stop`` (held for :data:`STOP_GRACE_S`)."""
        if self.closed:
            return
        if goodbye:
            self.device_said_goodbye = True
        if self._held is not None:
            self._held.append(text)
        elif stop:
            self._held = [text]
            asyncio.get_running_loop().call_later(STOP_GRACE_S, self._release)
        else:
            self._queue.put_nowait(text)

    def _release(self) -> None:
        held, self._held = self._held or [], None
        if not self.closed:
            for text in held:
                self._queue.put_nowait(text)

    def push_audio(self, payload: bytes) -> None:
        if self.closed:
            return
        if self._audio_queued >= MAX_QUEUED_AUDIO:
            self._endpoint.count("udp-queue-full")
            return
        self._audio_queued += 1
        self._queue.put_nowait(payload)

    def lost(self, reason: str) -> None:
        """The board is gone (MQTT dropped, replaced by a new hello, server stopping)."""
        self._finish(reason)

    # ------------------------------------------------------------------ Channel

    async def recv(self) -> str | bytes:
        item = await self._queue.get()
        if isinstance(item, _Closed):
            self._queue.put_nowait(item)  # every later recv() fails too
            raise ChannelClosed(item.reason)
        if isinstance(item, bytes):
            self._audio_queued -= 1
        return item

    async def send(self, data: str | bytes) -> None:
        if self.closed:
            raise ChannelClosed("session closed")
        if isinstance(data, bytes):
            self._endpoint.send(self.link, data)
        else:
            await self._publish(data)

    async def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        if not self.device_said_goodbye:
            try:
                await self._publish(encode_message(ServerGoodbye(session_id=self.session_id)))
            except Exception as exc:  # the board may be gone already
                logger.info("goodbye to %s not sent: %s", self.session_id[:8], exc)
        self._finish(reason or f"closed ({code})")

    def _finish(self, reason: str) -> None:
        if not self.closed:
            self.closed = True
            self._endpoint.unregister(self.link)
            self._queue.put_nowait(_Closed(reason))
