"""The downlink player: 40-packet queue with drop, reset, real-time drain, WAV sink."""

from __future__ import annotations

import time
import wave
from pathlib import Path

import numpy as np

from device.audio.player import Player
from device.audio.sinks import NullSink, WavSink
from protocol.opus import OpusEncoder


def packets(n: int, rate: int = 24000) -> list[bytes]:
    enc = OpusEncoder(rate, 60)
    t = np.arange(rate * 60 // 1000)
    return [enc.encode((np.sin(t / 5 + i) * 4000).astype(np.int16)) for i in range(n)]


async def test_queue_drops_beyond_40_and_reset_empties() -> None:
    player = Player(NullSink())
    player.configure(24000, 60)
    results = [player.push(p) for p in packets(45)]
    assert results == [True] * 40 + [False] * 5
    assert player.queued == 40 and player.dropped == 5
    player.reset()
    assert player.queued == 0
    assert player.push(packets(1)[0])


async def test_realtime_drain_takes_the_audio_duration(tmp_path: Path) -> None:
    sink = WavSink(tmp_path / "out.wav")
    player = Player(sink, realtime=True)
    player.configure(24000, 60)
    player.start()
    for p in packets(10):
        player.push(p)
    t0 = time.monotonic()
    await player.wait_drained()
    elapsed = time.monotonic() - t0
    assert 0.5 <= elapsed < 1.5  # 10 × 60 ms, paced
    assert player.played == 10
    await player.close()
    with wave.open(str(tmp_path / "out.wav")) as w:
        assert w.getframerate() == 24000 and w.getnframes() == 10 * 1440


async def test_corrupt_packet_is_skipped() -> None:
    sink = NullSink()
    player = Player(sink, realtime=False)
    player.configure(16000, 60)
    player.start()
    player.push(b"\xff\xff\xff")
    player.push(packets(1, 16000)[0])
    await player.wait_drained()
    assert player.played == 1 and sink.samples == 960
    await player.close()
