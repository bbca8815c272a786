"""Where decoded downlink audio goes: the speaker (sounddevice, lazy), a WAV file, or nowhere."""

from __future__ import annotations

import logging
import wave
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from device.errors import AudioSourceError, NoSoundDevice
from protocol.audio import Pcm, resample

logger = logging.getLogger(__name__)


NO_SPEAKER_HINT = "use --output FILE.wav to keep the replies, or --output null"


class AudioSink(Protocol):
    def write(self, pcm: Pcm, sample_rate_hz: int) -> None: ...

    def close(self) -> None: ...


class NullSink:
    """Discards audio but counts samples (seconds played = samples / rate)."""

    def __init__(self) -> None:
        self.samples = 0

    def write(self, pcm: Pcm, sample_rate_hz: int) -> None:
        self.samples += len(pcm)

    def close(self) -> None:
        pass


class WavSink:
    """Writes the whole conversation's downlink to one WAV (rate of the first chunk)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._wav: wave.Wave_write | None = None
        self._rate = 0

    def write(self, pcm: Pcm, sample_rate_hz: int) -> None:
        if self._wav is None:
            self._rate = sample_rate_hz
            self._wav = wave.open(str(self.path), "wb")  # noqa: SIM115 (kept open across writes)
            self._wav.setnchannels(1)
            self._wav.setsampwidth(2)
            self._wav.setframerate(sample_rate_hz)
        pcm = resample(pcm, sample_rate_hz, self._rate)
        self._wav.writeframes(np.ascontiguousarray(pcm, np.int16).tobytes())

    def close(self) -> None:
        if self._wav is not None:
            self._wav.close()
            self._wav = None


class SpeakerSink:
    """Plays through the default output device (``pip install 'xiaozhi-py[mic]'``)."""

    def __init__(self) -> None:
        try:
            import sounddevice as sd
        except (ImportError, OSError) as exc:
            raise AudioSourceError(
                f"speaker output needs sounddevice: pip install 'xiaozhi-py[mic]' ({exc})"
            ) from exc
        try:
            sd.query_devices(kind="output")
        except Exception as exc:  # PortAudioError "Error querying device -1": none at all
            raise NoSoundDevice(
                f"no speaker (audio output device) found; {NO_SPEAKER_HINT}"
            ) from exc
        self._sd = sd
        self._stream: Any = None
        self._rate = 0

    def write(self, pcm: Pcm, sample_rate_hz: int) -> None:
        if self._stream is None or sample_rate_hz != self._rate:
            self.close()
            try:
                stream = self._sd.OutputStream(samplerate=sample_rate_hz, channels=1, dtype="int16")
                stream.start()
            except Exception as exc:  # PortAudioError: no sound card
                raise NoSoundDevice(f"cannot open the speaker ({exc}); {NO_SPEAKER_HINT}") from exc
            self._stream, self._rate = stream, sample_rate_hz
        self._stream.write(pcm.reshape(-1, 1))

    def close(self) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None
