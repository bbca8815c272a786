"""Test speech as a server receives it: 16 kHz PCM → Opus 16 kHz/60 ms → decoded chunks."""

from __future__ import annotations

import numpy as np

from protocol.audio import Pcm, split_frames
from protocol.opus import OpusDecoder, OpusEncoder

RATE = 16000
FRAME = 960  # 60 ms


def opus_round_trip(pcm: Pcm, lead_ms: int = 300, tail_ms: int = 600) -> list[Pcm]:
    """Pad with silence, encode as the firmware does, decode: 60 ms chunks as a server gets them."""
    pad = lambda ms: np.zeros(RATE * ms // 1000, dtype=np.int16)  # noqa: E731
    audio = np.concatenate((pad(lead_ms), pcm, pad(tail_ms)))
    enc = OpusEncoder(RATE, 60, application="audio", complexity=0, dtx=True)
    dec = OpusDecoder(RATE, 60)
    return [dec.decode(enc.encode(f)) for f in split_frames(audio, FRAME)]
