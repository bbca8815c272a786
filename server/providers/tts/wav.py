"""Decode the 16-bit PCM WAV that command-line engines write (sizes may be bogus when streamed)."""

from __future__ import annotations

import struct

import numpy as np

from protocol.audio import Pcm
from server.providers.base import ProviderError


def decode_wav(data: bytes) -> tuple[Pcm, int]:
    """Return (mono int16 samples, sample rate in Hz) from RIFF/WAVE bytes.

    Tolerates the placeholder sizes (0x7fffffff) written by engines streaming to stdout: the data
    chunk runs to the end of the bytes. Multi-channel audio is downmixed to mono.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ProviderError("engine output is not a WAV file", code="tts-bad-output")
    pos = 12
    rate = channels = bits = 0
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        body = pos + 8
        if chunk_id == b"fmt ":
            fmt, channels, rate = struct.unpack_from("<HHI", data, body)
            (bits,) = struct.unpack_from("<H", data, body + 14)
            if fmt != 1 or bits != 16:
                raise ProviderError(
                    f"unsupported WAV format {fmt} / {bits} bit", code="tts-bad-output"
                )
        elif chunk_id == b"data":
            if not rate or not channels:
                raise ProviderError("WAV data before fmt chunk", code="tts-bad-output")
            end = min(len(data), body + size)
            raw = data[body:end]
            raw = raw[: len(raw) - len(raw) % (2 * channels)]
            pcm = np.frombuffer(raw, dtype="<i2").astype(np.int16)
            if channels > 1:
                pcm = pcm.reshape(-1, channels).mean(axis=1).astype(np.int16)
            return pcm, rate
        pos = body + size + (size & 1)
    raise ProviderError("WAV without data chunk", code="tts-bad-output")
