"""``ws://HOST:PORT/``: the sherpa-onnx streaming websocket protocol, for its unchanged clients.

Wire contract (as sherpa-onnx's ``streaming_server.py`` / ``online-websocket-server``):

* client → server: binary messages, each a buffer of float32 samples at 16 kHz in [-1, 1]
  (any length); the text message ``Done`` when the audio is over;
* server → client: after each audio message (one decode step), JSON
  ``{"text": <current segment so far>, "segment": N}``; after an endpoint the segment's final
  text with that ``segment`` and ``"is_final": true``, then ``segment`` is N + 1 (the message
  for that audio message follows with the new segment's text, often empty). A provider
  with a second pass (e.g. Whisper behind a streaming first pass) makes that final the
  second-pass text, so a client sees the segment again with the better text, as with
  sherpa's two-pass server;
* after ``Done``: 0.3 s of silence is fed, the last segment's final is sent, then the text
  ``Done!`` (what sherpa's C++ server sends; its clients close on it) and close 1000.

Anything else (text other than ``Done``, a binary message whose length is not a multiple of 4)
closes with 1003 and a reason; no message for ``transcribe.idle_timeout_s`` closes with 4408.
Over capacity: HTTP 503 at the handshake. Like sherpa's own server, no authentication unless
the port has ``websocket.tokens`` (then one of them, as ``?token=`` or a bearer header; 401);
``transcribe.enabled: false`` turns the service off.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Final

import numpy as np

from protocol.audio import Pcm
from server.session.connection import ChannelClosed
from server.transcribe.channel import TranscribeChannel
from server.transcribe.streams import StreamFactory, StreamOwner
from server.transcribe.transcriber import PartialText, SegmentFinal, Update

logger = logging.getLogger(__name__)

DONE: Final = "Done"
DONE_REPLY: Final = "Done!"
CLOSE_IDLE: Final = 4408


def float32_to_pcm(data: bytes) -> Pcm:
    """float32 samples in [-1, 1] → int16 (clipped; NaN becomes 0)."""
    samples = np.nan_to_num(np.frombuffer(data, dtype="<f4"), nan=0.0, posinf=1.0, neginf=-1.0)
    pcm: Pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16)
    return pcm


class SherpaEndpoint:
    """One handler for every sherpa-protocol connection."""

    path = "/"

    def __init__(self, streams: StreamFactory, *, idle_timeout_s: float = 90.0) -> None:
        self._streams = streams
        self._idle_s = idle_timeout_s

    async def serve(self, channel: TranscribeChannel, owner: StreamOwner) -> None:
        state = _SegmentState()

        async def deliver(updates: list[Update], tag: int) -> None:
            for message in state.messages(updates, trailing=tag >= 0):
                await channel.send(json.dumps(message, ensure_ascii=False))

        async with self._streams.open(deliver, owner, endpoint="sherpa") as stream:
            index = 0
            while True:
                try:
                    message = await asyncio.wait_for(channel.recv(), self._idle_s)
                except ChannelClosed:
                    return
                except TimeoutError:
                    await channel.close(CLOSE_IDLE, "idle timeout")
                    return
                if isinstance(message, str):
                    if message.strip() == DONE:
                        break
                    await channel.close(1003, "expected float32 audio or the text Done")
                    return
                if len(message) % 4:
                    await channel.close(1003, "binary messages must hold float32 samples")
                    return
                await stream.put(float32_to_pcm(message), index)
                index += 1
            await stream.finish(-1)  # tag -1: the end (no trailing "segment so far" message)
            if not state.sent_final:  # no speech at all: the (empty) final all the same
                await channel.send(json.dumps(state.current(), ensure_ascii=False))
            await channel.send(DONE_REPLY)
            await channel.close(1000, "done")


class _SegmentState:
    """Turns transcriber updates into sherpa messages."""

    def __init__(self) -> None:
        self.segment = 0
        self.text = ""
        self.sent_final = False

    def current(self) -> dict[str, object]:
        return {"text": self.text, "segment": self.segment}

    def messages(self, updates: list[Update], *, trailing: bool = True) -> list[dict[str, object]]:
        """The finals among ``updates``, then (``trailing``) the current segment so far: one
        such message per audio message, as sherpa's server sends one per decode step."""
        out: list[dict[str, object]] = []
        self.sent_final = False
        for update in updates:
            if isinstance(update, PartialText):
                self.segment, self.text = update.segment, update.text
            elif isinstance(update, SegmentFinal):
                out.append({"text": update.text, "segment": update.segment, "is_final": True})
                self.segment, self.text = update.segment + 1, ""
                self.sent_final = True
        if trailing:
            out.append(self.current())
        return out
