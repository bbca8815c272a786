"""Codec throughput: Opus frames per second per core through ``protocol.opus`` vs raw opuslib.

Both paths run in the same process on the same PCM (speech-like noise-modulated tones), so the
ratio shows what the project's wrapper costs. Each figure is the median of :data:`ROUNDS` rounds,
ours and raw alternating, with the ratio's min/max over the rounds.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from protocol.audio import samples_per_frame
from protocol.opus import OpusDecoder, OpusEncoder


def _signal(rate_hz: int, frames: int, frame_ms: int) -> list[bytes]:
    n = samples_per_frame(rate_hz, frame_ms)
    rng = np.random.default_rng(7)
    t = np.arange(n * frames) / rate_hz
    voiced = np.sin(2 * np.pi * 180 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    pcm = (voiced * 9000 + rng.normal(0, 600, t.size)).astype(np.int16)
    return [pcm[i * n : (i + 1) * n].tobytes() for i in range(frames)]


def _rate(fn: Callable[[], None], count: int) -> float:
    start = time.process_time()
    fn()
    elapsed = time.process_time() - start
    return count / elapsed if elapsed > 0 else float("inf")


ROUNDS = 5


def run(quick: bool = False) -> dict[str, Any]:
    """Measure encode/decode frames per CPU-second at 16 and 24 kHz, 60 ms."""
    import opuslib

    frames = 300 if quick else 2000
    rows = []
    for rate in (16000, 24000):
        pcm_frames = _signal(rate, frames, 60)
        n = samples_per_frame(rate, 60)
        ours_enc = OpusEncoder(rate, 60)
        raw_enc = opuslib.Encoder(rate, 1, opuslib.APPLICATION_AUDIO)
        packets = [raw_enc.encode(f, n) for f in pcm_frames]
        raw_enc = opuslib.Encoder(rate, 1, opuslib.APPLICATION_AUDIO)
        ours_dec, raw_dec = OpusDecoder(rate, 60), opuslib.Decoder(rate, 1)

        def enc_ours(e: OpusEncoder = ours_enc, fs: list[bytes] = pcm_frames) -> None:
            for f in fs:
                e.encode(f)

        def enc_raw(e: Any = raw_enc, fs: list[bytes] = pcm_frames, n: int = n) -> None:
            for f in fs:
                e.encode(f, n)

        def dec_ours(d: OpusDecoder = ours_dec, ps: list[bytes] = packets) -> None:
            for p in ps:
                d.decode(p)

        def dec_raw(d: Any = raw_dec, ps: list[bytes] = packets, n: int = n) -> None:
            for p in ps:
                d.decode(p, n)

        for op, ours, raw in (("encode", enc_ours, enc_raw), ("decode", dec_ours, dec_raw)):
            raws, oursl = [], []
            for _ in range(ROUNDS):
                raws.append(_rate(raw, frames))
                oursl.append(_rate(ours, frames))
            ratios = [o / r for o, r in zip(oursl, raws, strict=True)]
            rows.append(
                {
                    "rate_hz": rate,
                    "op": op,
                    "frames": frames,
                    "ours_fps": round(statistics.median(oursl)),
                    "raw_fps": round(statistics.median(raws)),
                    "ratio": round(statistics.median(ratios), 3),
                    "ratio_min": round(min(ratios), 3),
                    "ratio_max": round(max(ratios), 3),
                }
            )
    version = bytes(opuslib.api.info.get_version_string()).decode("ascii", "replace")
    return {"frame_ms": 60, "rounds": ROUNDS, "engines": {"codec": version}, "rows": rows}
