"""Audio the mock AI service sends and reads: speech bodies in the four ``response_format``s of
``/audio/speech`` (raw pcm, streamed WAV, Ogg Opus, MP3) and the length of an uploaded file.

Every encoder turns int16 mono PCM into a list of byte pieces, so the service can stream them
with its own pacing. Rates in Hz, durations in s.
"""

from __future__ import annotations

import io
import struct
import wave
from typing import Final

import numpy as np

from protocol.audio import Pcm, samples_per_frame, split_frames
from protocol.opus import OpusEncoder
from server.recordings.ogg_opus import ogg_crc

OPUS_FRAME_MS: Final = 20
OPUS_PRE_SKIP: Final = 312
"""Samples at 48 kHz the decoder drops at the start (libopus' usual look-ahead)."""
FORMATS: Final = ("pcm", "wav", "opus", "mp3")


def ogg_page(packet: bytes, *, serial: int, seq: int, granule: int, flags: int) -> bytes:
    """One Ogg page holding exactly one packet (RFC 3533)."""
    lacing = bytes([255] * (len(packet) // 255) + [len(packet) % 255])
    head = struct.pack("<4sBBqIIIB", b"OggS", 0, flags, granule, serial, seq, 0, len(lacing))
    page = bytearray(head + lacing + packet)
    struct.pack_into("<I", page, 22, ogg_crc(bytes(page)))
    return bytes(page)


def ogg_opus(pcm: Pcm, rate_hz: int, serial: int = 0x584D4B31) -> list[bytes]:
    """Ogg Opus (RFC 7845): OpusHead and OpusTags pages, then one 20 ms packet per page."""
    encoder = OpusEncoder(rate_hz, OPUS_FRAME_MS)
    head = struct.pack("<8sBBHIhB", b"OpusHead", 1, 1, OPUS_PRE_SKIP, rate_hz, 0, 0)
    vendor = b"xiaozhi-bench mock-ai"
    tags = b"OpusTags" + struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", 0)
    pages = [
        ogg_page(head, serial=serial, seq=0, granule=0, flags=0x02),
        ogg_page(tags, serial=serial, seq=1, granule=0, flags=0),
    ]
    frames = split_frames(pcm, samples_per_frame(rate_hz, OPUS_FRAME_MS))
    granule = OPUS_PRE_SKIP
    for i, frame in enumerate(frames):
        granule += 48 * OPUS_FRAME_MS
        last = i == len(frames) - 1
        pages.append(
            ogg_page(
                encoder.encode(frame),
                serial=serial,
                seq=i + 2,
                granule=granule,
                flags=0x04 if last else 0,
            )
        )
    return pages


def streamed_wav_header(rate_hz: int) -> bytes:
    """A RIFF header with the 0xFFFFFFFF sizes of a file whose length is not known yet."""
    fmt = struct.pack("<HHIIHH", 1, 1, rate_hz, rate_hz * 2, 2, 16)
    return (
        b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE"
        b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", 0xFFFFFFFF)
    )


def mp3(pcm: Pcm, rate_hz: int) -> list[bytes]:
    """MP3 packets encoded with PyAV (libmp3lame); ImportError without ``av``."""
    import av

    codec = av.CodecContext.create("libmp3lame", "w")
    codec.sample_rate = rate_hz
    codec.layout = "mono"
    codec.format = "s16p"
    codec.bit_rate = 48000
    out: list[bytes] = []
    size = 1152
    for start in range(0, len(pcm), size):
        chunk = np.ascontiguousarray(pcm[start : start + size], dtype=np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(chunk, format="s16p", layout="mono")
        frame.sample_rate = rate_hz
        out += [bytes(p) for p in codec.encode(frame)]
    out += [bytes(p) for p in codec.encode(None)]
    return out


def speech_pieces(pcm: Pcm, rate_hz: int, fmt: str, piece_ms: int = 100) -> list[bytes]:
    """``pcm`` as the body pieces of ``response_format`` ``fmt``, about ``piece_ms`` each."""
    if fmt in ("pcm", "wav"):
        step = rate_hz * piece_ms // 1000
        raw = [
            np.ascontiguousarray(pcm[i : i + step], dtype="<i2").tobytes()
            for i in range(0, len(pcm), step)
        ]
        return [streamed_wav_header(rate_hz), *raw] if fmt == "wav" else raw
    per_piece = max(1, piece_ms // OPUS_FRAME_MS) if fmt == "opus" else 3
    packets = ogg_opus(pcm, rate_hz) if fmt == "opus" else mp3(pcm, rate_hz)
    head = 2 if fmt == "opus" else 0
    pieces = [b"".join(packets[:head])] if head else []
    for i in range(head, len(packets), per_piece):
        pieces.append(b"".join(packets[i : i + per_piece]))
    return [p for p in pieces if p]


def upload_seconds(data: bytes) -> float:
    """Duration of an uploaded file: exact for WAV, else assumed 16 kHz 16-bit mono raw."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        try:
            with wave.open(io.BytesIO(data)) as w:
                frames, rate = int(w.getnframes()), int(w.getframerate())
                return frames / rate
        except (wave.Error, EOFError, ZeroDivisionError):
            pass
    return len(data) / 32000.0
