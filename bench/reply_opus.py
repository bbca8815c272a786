"""Opus encoder settings for spoken replies: CPU per frame against what a listener still hears.

Replies of the default English voice (Piper) at the downlink rate (24 kHz, 60 ms) are encoded
at several complexities, decoded, and heard back by Whisper; each row gives the encoder's CPU
per frame, the bitrate, the mean word error rate of Whisper on the decoded audio (the uncoded
audio's is the reference row) and the waveform SNR. ``audio.opus_complexity`` was chosen from
it.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from protocol.audio import Pcm, resample
from protocol.opus import OpusDecoder, OpusEncoder

REPLIES = (
    "The living room lamp is on.",
    "Volume set to 30.",
    "It is twelve forty five in the afternoon.",
    "Sorry, I can't help with that yet.",
    "The kitchen lamp is off.",
    "Today is Tuesday, December first.",
)
RATE_HZ, FRAME = 24000, 1440
COMPLEXITIES = (10, 8, 5, 3, 0)


def token_error_rate(reference: Sequence[str], heard: Sequence[str]) -> float:
    """Edits (substitutions, insertions, deletions) per reference token."""
    row = list(range(len(heard) + 1))
    for i, r in enumerate(reference, 1):
        diagonal, row[0] = row[0], i
        for j, h in enumerate(heard, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (r != h))
    return row[-1] / max(1, len(reference))


def word_error_rate(reference: str, heard: str) -> float:
    """Word edits per reference word, case and punctuation ignored."""

    def words(s: str) -> list[str]:
        return re.sub(r"[^a-z0-9' ]", " ", s.lower()).split()

    return token_error_rate(words(reference), words(heard))


def _snr_db(reference: Pcm, decoded: Pcm) -> float:
    """Waveform SNR after aligning ``decoded`` by the codec's delay (found by correlation)."""
    ref, out = reference.astype(np.float64), decoded.astype(np.float64)
    n = min(len(ref), len(out))
    delay = max(range(400), key=lambda k: float(np.dot(ref[: n - k], out[k:n])))
    r, o = ref[: n - delay], out[delay:n]
    return float(10 * np.log10(np.sum(r**2) / max(1e-9, np.sum((r - o) ** 2))))


def _code(pcm: Pcm, complexity: int) -> tuple[Pcm, float, int, int]:
    """(decoded PCM, encode CPU s, frames, bytes)."""
    encoder, decoder = OpusEncoder(RATE_HZ, 60, complexity=complexity), OpusDecoder(RATE_HZ, 60)
    frames = [pcm[i : i + FRAME] for i in range(0, len(pcm) - FRAME + 1, FRAME)]
    started = time.process_time()
    packets = [encoder.encode(f) for f in frames]
    cpu_s = time.process_time() - started
    decoded = np.concatenate([decoder.decode(p) for p in packets])
    return decoded, cpu_s, len(frames), sum(len(p) for p in packets)


def run(quick: bool = False) -> dict[str, Any]:
    from server.config import load_settings
    from server.providers.asr.whisper import WhisperAsr
    from server.providers.tts.piper import PiperTts

    settings = load_settings()
    tts, asr = PiperTts(settings.tts), WhisperAsr(settings.asr)
    replies = REPLIES[:2] if quick else REPLIES

    async def synthesise() -> list[Pcm]:
        audio = [await tts.synthesize(text) for text in replies]
        return [resample(a.pcm, a.sample_rate_hz, RATE_HZ) for a in audio]

    pcms = asyncio.run(synthesise())

    def heard(pcm: Pcm) -> str:
        return str(asr.recognise(resample(pcm, RATE_HZ, 16000), "en").text)

    uncoded = [word_error_rate(t, heard(p)) for t, p in zip(replies, pcms, strict=True)]
    rows: list[dict[str, Any]] = [
        {"complexity": "uncoded", "encode_ms_per_frame": None, "kbit_s": None,
         "mean_wer": round(float(np.mean(uncoded)), 3), "snr_db": None},
    ]  # fmt: skip
    for complexity in COMPLEXITIES[:3] if quick else COMPLEXITIES:
        cpu_s, frames, size, errors, snrs = 0.0, 0, 0, [], []
        for text, pcm in zip(replies, pcms, strict=True):
            decoded, cpu, n, b = _code(pcm, complexity)
            cpu_s, frames, size = cpu_s + cpu, frames + n, size + b
            errors.append(word_error_rate(text, heard(decoded)))
            snrs.append(_snr_db(pcm, decoded))
        rows.append(
            {
                "complexity": complexity,
                "encode_ms_per_frame": round(cpu_s / frames * 1000, 3),
                "kbit_s": round(size * 8 / (frames * 0.06) / 1000, 1),
                "mean_wer": round(float(np.mean(errors)), 3),
                "snr_db": round(float(np.mean(snrs)), 1),
            }
        )
    return {"voice": "piper", "rate_hz": RATE_HZ, "replies": len(replies), "rows": rows}
