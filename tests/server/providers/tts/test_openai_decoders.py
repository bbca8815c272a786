"""The incremental speech decoders behind ``tts.provider openai``: whatever pieces the socket
delivers (odd bytes, a header split in two, Ogg pages cut anywhere), the audio is the same as
decoding the whole body; bad bodies are ``tts-bad-output``; re-framing gives whole frames."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest

from bench.mock_ai_audio import ogg_crc, ogg_opus, speech_pieces
from server.errors import ErrorCode, ProviderError
from server.providers.tts.audio_stream import Reframer, decoder_for

RATE = 24000


def speech() -> np.ndarray:
    t = np.arange(RATE) / RATE
    return (8000 * np.sin(2 * np.pi * 300 * t) * np.sin(2 * np.pi * 2 * t)).astype(np.int16)


def decode_in_pieces(fmt: str, body: bytes, seed: int) -> tuple[np.ndarray, int]:
    rng = random.Random(seed)
    decoder = decoder_for(fmt, RATE)
    out, pos = [], 0
    while pos < len(body):
        step = rng.randint(1, 700)
        out.append(decoder.feed(body[pos : pos + step]))
        pos += step
    out.append(decoder.flush())
    return np.concatenate(out), decoder.sample_rate_hz


@pytest.mark.parametrize("fmt", ["pcm", "wav", "opus"])
@pytest.mark.parametrize("seed", [1, 2])
def test_any_split_decodes_like_the_whole(fmt: str, seed: int) -> None:
    body = b"".join(speech_pieces(speech(), RATE, fmt))
    pieces, rate = decode_in_pieces(fmt, body, seed)
    reference = decoder_for(fmt, RATE)
    whole = np.concatenate([reference.feed(body), reference.flush()])
    assert np.array_equal(pieces, whole)
    if fmt in ("pcm", "wav"):
        assert rate == RATE and np.array_equal(pieces, speech())
    else:  # lossy, at 48 kHz, the encoder's pre-skip removed
        assert rate == 48000
        assert len(pieces) == pytest.approx(2 * len(speech()), abs=48 * 20)
        correlation = np.corrcoef(pieces[::2][: len(speech()) - 400], speech()[:-400])[0, 1]
        assert correlation > 0.8


def test_mock_ogg_is_valid_for_a_real_demuxer() -> None:
    pages = ogg_opus(speech(), RATE)
    first = pages[0]
    zeroed = first[:22] + b"\0\0\0\0" + first[26:]
    assert ogg_crc(zeroed) == int.from_bytes(first[22:26], "little")
    av = pytest.importorskip("av")
    with av.open(io.BytesIO(b"".join(pages)), format="ogg") as container:
        samples = sum(frame.samples for frame in container.decode(audio=0))
    assert samples == pytest.approx(2 * len(speech()), abs=48 * 20)  # FFmpeg decodes at 48 kHz


@pytest.mark.parametrize(
    ("fmt", "body"),
    [("wav", b"<html>oops</html>"), ("opus", b"ID3 not ogg at all...."), ("wav", b"RIFF")],
)
def test_bad_bodies_are_bad_output(fmt: str, body: bytes) -> None:
    decoder = decoder_for(fmt, RATE)
    with pytest.raises(ProviderError) as caught:
        decoder.feed(body)
        decoder.flush()
    assert caught.value.code == ErrorCode.TTS_BAD_OUTPUT


def test_reframer_gives_whole_frames_then_the_rest() -> None:
    frames = Reframer(60)
    assert frames.push(np.zeros(1000, np.int16), 24000) is None  # < one 1,440-sample frame
    piece = frames.push(np.zeros(2500, np.int16), 24000)
    assert piece is not None and len(piece) == 2880
    rest = frames.rest()
    assert rest is not None and len(rest) == 3500 - 2880
    assert frames.rest() is None
