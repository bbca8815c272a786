"""Client audio input: WAV reading (mono/stereo, other rates), clear errors."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from clients.audio import ClientError, read_wav


def write(path: Path, pcm: np.ndarray, rate: int, channels: int = 1) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())


def test_reads_16k_mono_and_downmixes_and_resamples(tmp_path: Path) -> None:
    write(tmp_path / "a.wav", np.arange(1600, dtype=np.int16), 16000)
    assert read_wav(tmp_path / "a.wav").tolist() == list(range(1600))
    write(tmp_path / "b.wav", np.full(4800 * 2, 100, dtype=np.int16), 48000, channels=2)
    assert abs(len(read_wav(tmp_path / "b.wav")) - 1600) <= 2


def test_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ClientError, match="cannot read"):
        read_wav(tmp_path / "missing.wav")
    (tmp_path / "junk.wav").write_bytes(b"not a wav")
    with pytest.raises(ClientError, match=r"junk\.wav"):
        read_wav(tmp_path / "junk.wav")
