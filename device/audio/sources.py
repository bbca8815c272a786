"""Uplink audio sources: 16 kHz mono int16 PCM handed out in 60 ms frames.

A scripted :class:`Utterance` knows where its speech ends (last voiced sample) so the simulator can
time latencies from the true end of speech. :class:`ScriptedSource` plays queued utterances and
silence in between, like a microphone in a quiet room.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from device.errors import AudioSourceError, NoSoundDevice
from protocol.audio import UPLINK_SAMPLE_RATE_HZ, Pcm, resample

logger = logging.getLogger(__name__)

VOICED_ABS_THRESHOLD = 500
"""|sample| at or above this counts as voiced (≈ −36 dBFS) for the end-of-speech mark."""
PREROLL_SAMPLES = 2 * UPLINK_SAMPLE_RATE_HZ


__all__ = ["AudioSourceError", "MicSource", "ScriptedSource", "Utterance", "say", "synthesize"]
NO_MIC_HINT = "use --wav FILE or --say TEXT to speak without a microphone"


@dataclass(frozen=True)
class Utterance:
    """Scripted speech at 16 kHz and the index just after its last voiced sample."""

    pcm: Pcm
    speech_end: int
    label: str = ""


def last_voiced(pcm: Pcm, threshold: int = VOICED_ABS_THRESHOLD) -> int:
    """Index after the last sample with ``|x| >= threshold`` (0 if none)."""
    idx = np.flatnonzero(np.abs(pcm.astype(np.int32)) >= threshold)
    return int(idx[-1]) + 1 if idx.size else 0


def read_wav(path: Path) -> tuple[Pcm, int]:
    """Read a 16-bit PCM WAV as mono int16 and its rate (channels averaged)."""
    try:
        with wave.open(str(path), "rb") as w:
            if w.getsampwidth() != 2:
                raise AudioSourceError(f"{path}: only 16-bit PCM WAV is supported")
            rate, channels = w.getframerate(), w.getnchannels()
            data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    except (OSError, wave.Error, EOFError) as exc:
        raise AudioSourceError(f"cannot read WAV {path}: {exc}") from exc
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1).astype(np.int16)
    return data, rate


def utterance_from_wav(path: Path, lead_in_ms: int = 200) -> Utterance:
    """A WAV file (any rate/channels) as a 16 kHz utterance with a short silent lead-in."""
    pcm, rate = read_wav(path)
    pcm = resample(pcm, rate, UPLINK_SAMPLE_RATE_HZ)
    lead = np.zeros(UPLINK_SAMPLE_RATE_HZ * lead_in_ms // 1000, dtype=np.int16)
    full = np.concatenate([lead, pcm])
    return Utterance(full, last_voiced(full), path.name)


SAY_VOICE = "slt"
"""flite voice for spoken test commands: 16 kHz like a board's microphone. flite's built-in
default (``kal``) is 8 kHz; upsampled, it has no energy above 4 kHz, so "sixty" loses its "s"
and the recogniser hears "thirty"."""
SAY_ENGINES = ("flite", "espeak")


def say(text: str, engine: str = "flite", voice: str = SAY_VOICE) -> Pcm:
    """Speak ``text`` with the flite (``voice``) or espeak-ng binary → 16 kHz int16 PCM.

    Blocking (runs a subprocess, 10–50 ms): call it from a worker thread in async code.
    """
    if engine not in SAY_ENGINES:
        raise AudioSourceError(f"unknown speech engine {engine!r}; use one of {SAY_ENGINES}")
    program = "flite" if engine == "flite" else "espeak-ng"
    binary = shutil.which(program)
    if binary is None:
        raise AudioSourceError(
            f"speaking needs {program} (Debian/Ubuntu: apt-get install {program})"
        )
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "say.wav"
        if engine == "flite":
            cmd = [binary, "-voice", voice, "-t", text, "-o", str(out)]
        else:
            cmd = [binary, "-v", "en-us", "-w", str(out), text]
        try:
            subprocess.run(cmd, check=True, capture_output=True, timeout=30)
        except (OSError, subprocess.SubprocessError) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            raise AudioSourceError(
                f"{engine} failed for {text!r}: {exc} {detail.decode(errors='replace').strip()}"
            ) from exc
        pcm, rate = read_wav(out)
    return resample(pcm, rate, UPLINK_SAMPLE_RATE_HZ)


async def synthesize(text: str, lead_in_ms: int = 200, engine: str = "flite") -> Utterance:
    """Speak ``text`` (see :func:`say`) into an utterance with a silent lead-in."""
    pcm = await asyncio.to_thread(say, text, engine)
    lead = np.zeros(UPLINK_SAMPLE_RATE_HZ * lead_in_ms // 1000, dtype=np.int16)
    full = np.concatenate([lead, pcm])
    return Utterance(full, last_voiced(full), text)


class ScriptedSource:
    """Plays queued utterances back to back, silence otherwise; remembers 2 s of pre-roll."""

    def __init__(self) -> None:
        self._queue: collections.deque[Utterance] = collections.deque(maxlen=16)
        self._current: Utterance | None = None
        self._pos = 0
        self._history = np.zeros(0, dtype=np.int16)
        self.speech_ended = False
        """Set when the frame holding the current utterance's last voiced sample is read."""

    def play(self, utterance: Utterance) -> None:
        self._queue.append(utterance)

    def clear(self) -> None:
        """Drop the queued utterances and the rest of the current one."""
        self._queue.clear()
        self._current = None

    @property
    def busy(self) -> bool:
        return self._current is not None or bool(self._queue)

    def read(self, samples: int) -> tuple[Pcm, bool]:
        """Next ``samples`` of audio and whether the end of speech lies in them."""
        out = np.zeros(samples, dtype=np.int16)
        ended = False
        if self._current is None and self._queue:
            self._current, self._pos = self._queue.popleft(), 0
        cur = self._current
        if cur is not None:
            chunk = cur.pcm[self._pos : self._pos + samples]
            out[: len(chunk)] = chunk
            if self._pos < cur.speech_end <= self._pos + samples:
                ended = True
            self._pos += samples
            if self._pos >= len(cur.pcm):
                self._current = None
        self._history = np.concatenate([self._history, out])[-PREROLL_SAMPLES:]
        return out, ended

    def preroll(self) -> Pcm:
        """Up to 2 s of audio heard most recently (what a board keeps for the wake word)."""
        return self._history.copy()


class MicSource:
    """Live microphone via sounddevice (optional extra ``[mic]``), 16 kHz mono."""

    def __init__(self, max_frames: int = 50) -> None:
        try:
            import sounddevice as sd
        except (ImportError, OSError) as exc:
            raise AudioSourceError(
                f"microphone needs sounddevice: pip install 'xiaozhi-py[mic]' ({exc})"
            ) from exc
        self._loop = asyncio.get_running_loop()
        self._frames: asyncio.Queue[Pcm] = asyncio.Queue(max_frames)
        self._buffer = np.zeros(0, dtype=np.int16)
        self._history = np.zeros(0, dtype=np.int16)
        self.speech_ended = False
        try:
            sd.query_devices(kind="input")
        except Exception as exc:  # PortAudioError "Error querying device -1": none at all
            raise NoSoundDevice(f"no microphone (audio input device) found; {NO_MIC_HINT}") from exc
        try:
            self._stream = sd.InputStream(
                samplerate=UPLINK_SAMPLE_RATE_HZ,
                channels=1,
                dtype="int16",
                blocksize=960,
                callback=self._callback,
            )
            self._stream.start()
        except Exception as exc:  # PortAudioError: no device
            raise NoSoundDevice(f"cannot open the microphone ({exc}); {NO_MIC_HINT}") from exc

    def _callback(self, indata: np.ndarray, frames: int, t: object, status: object) -> None:
        pcm = indata[:, 0].copy()
        self._loop.call_soon_threadsafe(self._push, pcm)

    def _push(self, pcm: Pcm) -> None:
        if self._frames.full():
            self._frames.get_nowait()
        self._frames.put_nowait(pcm)

    async def read_async(self, samples: int) -> Pcm:
        while len(self._buffer) < samples:
            self._buffer = np.concatenate([self._buffer, await self._frames.get()])
        out, self._buffer = self._buffer[:samples], self._buffer[samples:]
        self._history = np.concatenate([self._history, out])[-PREROLL_SAMPLES:]
        return out

    def preroll(self) -> Pcm:
        return self._history.copy()

    def close(self) -> None:
        self._stream.stop()
        self._stream.close()
