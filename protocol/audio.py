"""Audio parameters of the wire and small PCM helpers (sans-I/O).

PCM everywhere in this project is signed 16-bit little-endian mono (``int16``), as the firmware's
codec uses. Rates are in Hz, durations in ms.
"""

from __future__ import annotations

from typing import Final, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from protocol.errors import UnsupportedAudioParams

OPUS_SAMPLE_RATES_HZ: Final = (8000, 12000, 16000, 24000, 48000)
OPUS_FRAME_DURATIONS_MS: Final = (20, 40, 60)

UPLINK_SAMPLE_RATE_HZ: Final = 16000
"""The firmware's microphone/Opus encoder rate."""
DOWNLINK_SAMPLE_RATE_HZ: Final = 24000
"""Default rate of the server's Opus (the device's default when the server hello omits it)."""
FRAME_DURATION_MS: Final = 60
"""The firmware's frame duration, both directions."""
DEVICE_QUEUE_PACKETS: Final = 40
"""Packets the firmware's decode queue holds before dropping (2.4 s at 60 ms)."""

Pcm = npt.NDArray[np.int16]


class AudioParams(BaseModel):
    """``audio_params`` of a hello: the Opus stream a side will send (device) or sends (server)."""

    model_config = ConfigDict(extra="ignore")

    format: Literal["opus"] = "opus"
    sample_rate: int = Field(default=UPLINK_SAMPLE_RATE_HZ, gt=0)
    """Sample rate in Hz."""
    channels: int = Field(default=1, ge=1, le=2)
    frame_duration: int = Field(default=FRAME_DURATION_MS, gt=0)
    """Frame duration in ms."""


def samples_per_frame(sample_rate_hz: int, frame_duration_ms: int) -> int:
    """Samples in one frame of ``frame_duration_ms`` at ``sample_rate_hz`` (per channel)."""
    return sample_rate_hz * frame_duration_ms // 1000


def check_opus_params(sample_rate_hz: int, frame_duration_ms: int, channels: int = 1) -> None:
    """Raise :class:`UnsupportedAudioParams` unless Opus can code these parameters."""
    if sample_rate_hz not in OPUS_SAMPLE_RATES_HZ:
        raise UnsupportedAudioParams(
            f"Opus sample rate must be one of {OPUS_SAMPLE_RATES_HZ} Hz, got {sample_rate_hz}"
        )
    if frame_duration_ms not in OPUS_FRAME_DURATIONS_MS:
        raise UnsupportedAudioParams(
            f"frame duration must be one of {OPUS_FRAME_DURATIONS_MS} ms, got {frame_duration_ms}"
        )
    if channels not in (1, 2):
        raise UnsupportedAudioParams(f"Opus supports 1 or 2 channels, got {channels}")


def resample(pcm: Pcm, from_rate_hz: int, to_rate_hz: int) -> Pcm:
    """Resample int16 mono PCM with a high-quality band-limited resampler (soxr)."""
    if from_rate_hz == to_rate_hz or pcm.size == 0:
        return pcm
    import soxr

    out = soxr.resample(pcm, from_rate_hz, to_rate_hz)
    return np.asarray(out, dtype=np.int16)


def split_frames(pcm: Pcm, frame_samples: int, *, pad: bool = True) -> list[Pcm]:
    """Cut PCM into frames of ``frame_samples``; the last one is zero-padded when ``pad``."""
    frames = [pcm[i : i + frame_samples] for i in range(0, len(pcm), frame_samples)]
    if frames and len(frames[-1]) < frame_samples:
        if not pad:
            frames.pop()
        else:
            last = np.zeros(frame_samples, dtype=np.int16)
            last[: len(frames[-1])] = frames[-1]
            frames[-1] = last
    return frames


def rms_dbfs(pcm: Pcm) -> float:
    """Root-mean-square level in dBFS (−inf for digital silence is clamped to −120)."""
    if pcm.size == 0:
        return -120.0
    rms = float(np.sqrt(np.mean(np.square(pcm.astype(np.float64)))))
    if rms <= 0.0:
        return -120.0
    return max(-120.0, 20.0 * float(np.log10(rms / 32768.0)))
