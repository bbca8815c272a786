"""Real test speech for the checker: flite text-to-speech, Opus packets, Opus TOC parsing.

PCM is int16 mono; rates in Hz, durations in ms. Synthesis runs the ``flite`` binary (blocking:
call it from a worker thread).
"""

from __future__ import annotations

import logging
from typing import Final

import numpy as np

from device.audio.sources import AudioSourceError, say
from protocol.audio import Pcm, resample, samples_per_frame, split_frames
from protocol.opus import OpusEncoder

logger = logging.getLogger(__name__)

UPLINK_RATE_HZ: Final = 16000
UPLINK_FRAME_MS: Final = 60

_SILK_MS: Final = (10.0, 20.0, 40.0, 60.0)
_HYBRID_MS: Final = (10.0, 20.0)
_CELT_MS: Final = (2.5, 5.0, 10.0, 20.0)


class SpeechUnavailable(RuntimeError):
    """flite is missing or failed."""


def synthesize(text: str, rate_hz: int = UPLINK_RATE_HZ, *, lead_silence_ms: int = 150) -> Pcm:
    """Speak ``text`` with flite (16 kHz voice) and return int16 PCM at ``rate_hz``."""
    try:
        pcm = say(text)
    except AudioSourceError as exc:
        raise SpeechUnavailable(str(exc)) from exc
    pcm = resample(pcm, UPLINK_RATE_HZ, rate_hz)
    lead = np.zeros(rate_hz * lead_silence_ms // 1000, dtype=np.int16)
    return np.concatenate([lead, pcm])


def encode_pcm(
    pcm: Pcm, rate_hz: int = UPLINK_RATE_HZ, frame_ms: int = UPLINK_FRAME_MS
) -> list[bytes]:
    """Encode PCM into Opus packets of ``frame_ms`` with the firmware's encoder settings."""
    encoder = OpusEncoder(rate_hz, frame_ms, complexity=0)
    return [encoder.encode(f) for f in split_frames(pcm, samples_per_frame(rate_hz, frame_ms))]


def silence_packets(count: int, *, dtx_after: int = 3) -> list[bytes]:
    """``count`` 60 ms uplink packets of silence; after ``dtx_after`` real ones, 1-byte DTX packets.

    A TOC-only packet (code 0, empty frame) is what a DTX encoder emits for silence; decoders
    treat it as a lost frame and conceal it.
    """
    encoder = OpusEncoder(UPLINK_RATE_HZ, UPLINK_FRAME_MS, complexity=0)
    zeros = np.zeros(samples_per_frame(UPLINK_RATE_HZ, UPLINK_FRAME_MS), dtype=np.int16)
    out: list[bytes] = []
    toc = b""
    for i in range(count):
        if i < dtx_after or not toc:
            packet = encoder.encode(zeros)
            toc = packet[:1]
            out.append(packet)
        else:
            out.append(toc)
    return out


def packet_duration_ms(packet: bytes) -> float | None:
    """Audio duration of one Opus packet from its TOC byte (RFC 6716 §3.1), or None if invalid."""
    if not packet:
        return None
    toc = packet[0]
    config, code = toc >> 3, toc & 0x03
    if config < 12:
        frame_ms = _SILK_MS[config % 4]
    elif config < 16:
        frame_ms = _HYBRID_MS[config % 2]
    else:
        frame_ms = _CELT_MS[config % 4]
    if code == 0:
        frames = 1
    elif code in (1, 2):
        frames = 2
    else:
        if len(packet) < 2:
            return None
        frames = packet[1] & 0x3F
        if frames == 0:
            return None
    duration = frames * frame_ms
    return duration if duration <= 120.0 else None
