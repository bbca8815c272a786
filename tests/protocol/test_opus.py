"""Opus round trips at 16 and 24 kHz / 60 ms: exact frame counts and lengths, a tone survives."""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np
import pytest

from protocol.audio import samples_per_frame, split_frames
from protocol.errors import CodecUnavailable, CorruptAudio, UnsupportedAudioParams
from protocol.opus import OpusDecoder, OpusEncoder


def tone(rate: int, seconds: float, hz: float = 1000.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * hz * t) * 12000).astype(np.int16)


@pytest.mark.parametrize("rate", [16000, 24000])
def test_tone_round_trip(rate: int) -> None:
    pcm = tone(rate, 1.2)  # exactly 20 frames of 60 ms
    encoder, decoder = OpusEncoder(rate, 60), OpusDecoder(rate, 60)
    frames = split_frames(pcm, samples_per_frame(rate, 60))
    assert len(frames) == 20
    packets = [encoder.encode(f) for f in frames]
    assert all(0 < len(p) < 1500 for p in packets)
    decoded = [decoder.decode(p) for p in packets]
    assert [len(d) for d in decoded] == [samples_per_frame(rate, 60)] * 20
    out = np.concatenate(decoded).astype(np.float64)
    ref = pcm.astype(np.float64)
    # Opus has a small algorithmic delay: align by the best lag before comparing.
    lag = int(np.argmax(np.correlate(out[:4000], ref[:2000], mode="valid")))
    aligned = out[lag : lag + len(ref) - 2000]
    reference = ref[: len(aligned)]
    corr = np.corrcoef(aligned[2000:], reference[2000:])[0, 1]
    snr = 10 * np.log10(np.sum(reference**2) / np.sum((aligned - reference) ** 2))
    assert corr > 0.95
    assert snr > 10.0
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(np.argmax(spectrum) * rate / len(out) - 1000.0) < 5.0


@pytest.mark.parametrize(("rate", "ms"), [(8000, 20), (12000, 40), (48000, 60), (24000, 20)])
def test_other_rates_and_durations(rate: int, ms: int) -> None:
    encoder, decoder = OpusEncoder(rate, ms), OpusDecoder(rate, ms)
    n = samples_per_frame(rate, ms)
    assert len(decoder.decode(encoder.encode(tone(rate, ms / 1000)))) == n


def test_wrong_frame_length_is_a_clear_error() -> None:
    with pytest.raises(CorruptAudio, match="960 samples"):
        OpusEncoder(16000, 60).encode(np.zeros(100, np.int16))


def test_corrupt_packet_is_a_codec_error() -> None:
    decoder = OpusDecoder(16000, 60)
    with pytest.raises(CorruptAudio):
        decoder.decode(b"\xff\xff\xff")
    with pytest.raises(CorruptAudio):
        decoder.decode(b"")
    # The decoder keeps working afterwards.
    good = OpusEncoder(16000, 60).encode(tone(16000, 0.06))
    assert len(decoder.decode(good)) == 960


@pytest.mark.parametrize(("rate", "ms"), [(44100, 60), (16000, 30), (16000, 120)])
def test_unsupported_params(rate: int, ms: int) -> None:
    with pytest.raises(UnsupportedAudioParams):
        OpusEncoder(rate, ms)


def test_missing_libopus_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "opuslib":
            raise Exception("Could not find Opus library. Make sure it is installed.")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(CodecUnavailable, match="libopus0"):
        OpusDecoder(16000, 60)
