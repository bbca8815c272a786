"""Synthetic test speech: flite / espeak-ng → 16 kHz → Opus 16 kHz/60 ms round trip."""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import numpy as np

from protocol.audio import Pcm, resample, split_frames
from protocol.opus import OpusDecoder, OpusEncoder

RATE = 16000
FRAME = 960  # 60 ms


def synthesize(engine: str, text: str, tmp: Path) -> Pcm:
    """Speech from ``flite`` or ``espeak`` as 16 kHz int16 PCM."""
    out = tmp / f"{engine}-{abs(hash(text))}.wav"
    if engine == "flite":
        cmd = ["flite", "-t", text, "-o", str(out)]
    else:
        cmd = ["espeak-ng", "-w", str(out), text]
    subprocess.run(cmd, check=True, capture_output=True, timeout=30)
    with wave.open(str(out), "rb") as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    return resample(pcm, rate, RATE)


def opus_round_trip(pcm: Pcm, lead_ms: int = 300, tail_ms: int = 600) -> list[Pcm]:
    """Pad with silence, encode as the firmware does, decode: 60 ms chunks as a server gets them."""
    pad = lambda ms: np.zeros(RATE * ms // 1000, dtype=np.int16)  # noqa: E731
    audio = np.concatenate((pad(lead_ms), pcm, pad(tail_ms)))
    enc = OpusEncoder(RATE, 60, application="audio", complexity=0, dtx=True)
    dec = OpusDecoder(RATE, 60)
    return [dec.decode(enc.encode(f)) for f in split_frames(audio, FRAME)]
