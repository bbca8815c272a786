"""Audio for the clients: a 16 kHz mono WAV file or the microphone, as int16 chunks."""

from __future__ import annotations

import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np

RATE_HZ = 16000


class ClientError(Exception):
    """What the CLI prints (no traceback)."""


def read_wav(path: Path) -> np.ndarray:
    """int16 mono 16 kHz samples of ``path`` (other rates are resampled with soxr)."""
    try:
        with wave.open(str(path)) as f:
            rate, channels, width = f.getframerate(), f.getnchannels(), f.getsampwidth()
            raw = f.readframes(f.getnframes())
    except (OSError, wave.Error, EOFError) as exc:
        raise ClientError(f"cannot read {path}: {exc}") from exc
    if width != 2:
        raise ClientError(f"{path}: need 16-bit PCM WAV, got {8 * width}-bit")
    samples = np.frombuffer(raw, dtype="<i2").reshape(-1, channels).mean(axis=1)
    if rate != RATE_HZ:
        import soxr

        samples = soxr.resample(samples, rate, RATE_HZ)
    pcm: np.ndarray = np.clip(samples, -32768, 32767).astype(np.int16)
    return pcm


def chunks(samples: np.ndarray, chunk_samples: int) -> list[np.ndarray]:
    return [samples[i : i + chunk_samples] for i in range(0, len(samples), chunk_samples)]


async def microphone(chunk_samples: int, seconds: float) -> AsyncIterator[np.ndarray]:
    """Microphone chunks for ``seconds`` (needs the ``mic`` extra and a sound card)."""
    import asyncio

    try:
        import sounddevice
    except (ImportError, OSError) as exc:
        raise ClientError(f"microphone needs sounddevice and PortAudio ({exc})") from exc
    queue: asyncio.Queue[np.ndarray] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    def callback(data: np.ndarray, *_: object) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, data[:, 0].copy())

    try:
        stream = sounddevice.InputStream(
            samplerate=RATE_HZ,
            channels=1,
            dtype="int16",
            blocksize=chunk_samples,
            callback=callback,
        )
    except Exception as exc:
        raise ClientError(f"cannot open the microphone: {exc}") from exc
    with stream:
        for _ in range(int(seconds * RATE_HZ / chunk_samples)):
            yield await queue.get()
