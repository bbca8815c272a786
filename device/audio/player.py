"""Downlink playback: the firmware's 40-packet decode queue, drained in real time into a sink.

Pushes never block: a packet beyond 40 queued is dropped (counted). :meth:`Player.reset` empties
the queue and resets the decoder (entering ``speaking``). :meth:`wait_drained` is what auto mode
waits for before its next ``listen start``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time

from device.audio.sinks import AudioSink
from protocol.audio import DEVICE_QUEUE_PACKETS, rms_dbfs
from protocol.errors import CorruptAudio
from protocol.opus import OpusDecoder

logger = logging.getLogger(__name__)


class Player:
    """Decode queue + real-time drain task (start with :meth:`start`, stop with :meth:`close`)."""

    def __init__(
        self,
        sink: AudioSink,
        *,
        capacity: int = DEVICE_QUEUE_PACKETS,
        realtime: bool = True,
    ) -> None:
        self.sink = sink
        self.capacity = capacity
        self.realtime = realtime
        self._queue: collections.deque[bytes] = collections.deque()
        self._decoder: OpusDecoder | None = None
        self._rate, self._frame_ms = 24000, 60
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0
        self.played = 0
        self.corrupt = 0
        self.level_dbfs = -120.0
        self.sink_failed = False

    def configure(self, sample_rate_hz: int, frame_duration_ms: int) -> None:
        """Decoder parameters from the server hello."""
        if (sample_rate_hz, frame_duration_ms) != (self._rate, self._frame_ms) or not self._decoder:
            self._rate, self._frame_ms = sample_rate_hz, frame_duration_ms
            self._decoder = OpusDecoder(sample_rate_hz, frame_duration_ms)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="device-player")

    def push(self, packet: bytes) -> bool:
        """Queue one packet; False (and counted) when the queue already holds ``capacity``."""
        if len(self._queue) >= self.capacity:
            self.dropped += 1
            return False
        self._queue.append(packet)
        self._idle.clear()
        self._wakeup.set()
        return True

    def reset(self) -> None:
        """Empty the queue and reset the decoder (on entering speaking)."""
        self._queue.clear()
        if self._decoder is not None:
            self._decoder.reset()

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def wait_drained(self) -> None:
        """Until every queued packet has been played out."""
        if self._queue:
            self._idle.clear()
        await self._idle.wait()

    async def _run(self) -> None:
        frame_s = self._frame_ms / 1000
        deadline = time.monotonic()
        while True:
            if not self._queue:
                self.level_dbfs = -120.0
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                deadline = time.monotonic()
            packet = self._queue.popleft()
            if self._decoder is None:
                self.configure(self._rate, self._frame_ms)
            assert self._decoder is not None
            try:
                pcm = self._decoder.decode(packet)
            except CorruptAudio as exc:
                self.corrupt += 1
                logger.warning("dropping undecodable downlink packet: %s", exc)
                continue
            self.played += 1
            self.level_dbfs = rms_dbfs(pcm)
            if not self.sink_failed:
                try:
                    self.sink.write(pcm, self._rate)
                except Exception as exc:  # reported once; playback timing goes on without it
                    self.sink_failed = True
                    logger.error("audio output failed, replies are no longer played: %s", exc)
            frame_s = len(pcm) / self._rate
            if self.realtime:
                deadline += frame_s
                await asyncio.sleep(max(0.0, deadline - time.monotonic()))
            else:
                await asyncio.sleep(0)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.sink.close()
