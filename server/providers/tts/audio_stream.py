"""Incremental decoders for streamed speech (the ``response_format`` of ``/audio/speech``).

Each decoder takes the response body in whatever pieces the socket delivers and returns the
mono int16 PCM it could decode so far, so the first sentence can play before the body ends:

* ``pcm``: raw 16-bit little-endian mono at a rate given out of band (OpenAI: 24 kHz).
* ``wav``: RIFF header first (sizes may be the 0xFFFFFFFF placeholders of a streamed file),
  then raw PCM; multi-channel data is downmixed.
* ``opus``: Ogg pages carrying Opus packets (RFC 7845), decoded with libopus at 48 kHz.
* ``mp3``: PyAV's MP3 parser and decoder when ``av`` is installed; without it the whole body
  is decoded with miniaudio at the end (no early audio, said in the log once).

Bad data raises :class:`ProviderError` with code ``tts-bad-output``.
"""

from __future__ import annotations

import logging
import struct
from typing import Any, Protocol

import numpy as np

from protocol.audio import Pcm
from server.errors import ErrorCode, ProviderError, ProviderUnavailable

log = logging.getLogger(__name__)

EMPTY: Pcm = np.zeros(0, dtype=np.int16)
MAX_HEADER_BYTES = 64 * 1024
"""A WAV header longer than this (before the ``data`` chunk) is not speech."""


def _bad(message: str) -> ProviderError:
    return ProviderError(message, code=ErrorCode.TTS_BAD_OUTPUT)


def to_mono_int16(samples: np.ndarray, channels: int) -> Pcm:
    """Interleaved int16 samples → mono (mean of the channels)."""
    if channels <= 1:
        mono: Pcm = samples.astype(np.int16, copy=False)
        return mono
    frames = samples[: len(samples) - len(samples) % channels].reshape(-1, channels)
    mixed: Pcm = frames.mean(axis=1).astype(np.int16)
    return mixed


class StreamDecoder(Protocol):
    """Body bytes in, PCM out; ``sample_rate_hz`` is 0 until the stream has told it."""

    sample_rate_hz: int

    def feed(self, data: bytes) -> Pcm: ...

    def flush(self) -> Pcm:
        """End of body: what is left (raises if the body was not audio at all)."""
        ...


class PcmDecoder:
    def __init__(self, sample_rate_hz: int, channels: int = 1) -> None:
        self.sample_rate_hz = sample_rate_hz
        self._channels = channels
        self._carry = b""

    def feed(self, data: bytes) -> Pcm:
        data = self._carry + data
        usable = len(data) - len(data) % (2 * self._channels)
        self._carry = data[usable:]
        return to_mono_int16(np.frombuffer(data[:usable], dtype="<i2"), self._channels)

    def flush(self) -> Pcm:
        self._carry = b""
        return EMPTY


class WavDecoder:
    """Parses the RIFF header as it arrives, then behaves like :class:`PcmDecoder`."""

    def __init__(self) -> None:
        self.sample_rate_hz = 0
        self._head = b""
        self._pcm: PcmDecoder | None = None

    def feed(self, data: bytes) -> Pcm:
        if self._pcm is not None:
            return self._pcm.feed(data)
        self._head += data
        if len(self._head) >= 12 and (self._head[:4] != b"RIFF" or self._head[8:12] != b"WAVE"):
            raise _bad("the speech response is not a WAV file")
        pos, channels = 12, 0
        while pos + 8 <= len(self._head):
            chunk_id = self._head[pos : pos + 4]
            (size,) = struct.unpack_from("<I", self._head, pos + 4)
            body = pos + 8
            if chunk_id == b"data":
                if not self.sample_rate_hz:
                    raise _bad("WAV data before its fmt chunk")
                self._pcm = PcmDecoder(self.sample_rate_hz, channels)
                rest, self._head = self._head[body:], b""
                return self._pcm.feed(rest)
            if body + size > len(self._head):
                break  # the chunk is not complete yet
            if chunk_id == b"fmt ":
                fmt, channels, rate = struct.unpack_from("<HHI", self._head, body)
                (bits,) = struct.unpack_from("<H", self._head, body + 14)
                if fmt not in (1, 0xFFFE) or bits != 16:
                    raise _bad(f"unsupported WAV encoding (format {fmt}, {bits} bit)")
                self.sample_rate_hz = rate
            pos = body + size + (size & 1)
        if len(self._head) > MAX_HEADER_BYTES:
            raise _bad("WAV header without a data chunk")
        return EMPTY

    def flush(self) -> Pcm:
        if self._pcm is None:
            raise _bad("the speech response ended before any WAV audio")
        return self._pcm.flush()


class OggOpusDecoder:
    """Ogg demuxer (pages → packets) feeding libopus; skips the OpusHead/OpusTags packets."""

    RATE_HZ = 48000

    def __init__(self) -> None:
        from protocol.opus import OpusDecoder

        self.sample_rate_hz = self.RATE_HZ
        self._decoder = OpusDecoder(self.RATE_HZ, 60)
        self._buf = b""
        self._packet = b""
        self._packets_seen = 0
        self._pre_skip = 0

    def feed(self, data: bytes) -> Pcm:
        self._buf += data
        out: list[Pcm] = []
        while len(self._buf) >= 27:
            if self._buf[:4] != b"OggS":
                raise _bad("the speech response is not an Ogg stream")
            n_segments = self._buf[26]
            if len(self._buf) < 27 + n_segments:
                break
            lacing = self._buf[27 : 27 + n_segments]
            start = 27 + n_segments
            if len(self._buf) < start + sum(lacing):
                break
            pos = start
            for size in lacing:
                self._packet += self._buf[pos : pos + size]
                pos += size
                if size < 255:  # a packet ends here
                    packet, self._packet = self._packet, b""
                    out.append(self._packet_pcm(packet))
            self._buf = self._buf[pos:]
        return np.concatenate(out) if out else EMPTY

    def _packet_pcm(self, packet: bytes) -> Pcm:
        from protocol.errors import CorruptAudio

        self._packets_seen += 1
        if self._packets_seen == 1:
            if not packet.startswith(b"OpusHead") or len(packet) < 19:
                raise _bad("the Ogg stream does not carry Opus")
            (self._pre_skip,) = struct.unpack_from("<H", packet, 10)
            return EMPTY
        if packet.startswith(b"OpusTags") or not packet:
            return EMPTY
        try:
            pcm = self._decoder.decode(packet)
        except CorruptAudio as exc:
            raise _bad(str(exc)) from exc
        if self._pre_skip:
            skip = min(self._pre_skip, len(pcm))
            self._pre_skip -= skip
            pcm = pcm[skip:]
        return pcm

    def flush(self) -> Pcm:
        if self._packets_seen == 0:
            raise _bad("the speech response ended before any Opus audio")
        return EMPTY


class Mp3Decoder:
    """PyAV's MP3 parser when available (frames decode as they arrive), else decode at the end."""

    def __init__(self) -> None:
        self.sample_rate_hz = 0
        self._codec: Any = None
        self._whole: list[bytes] = []
        try:
            import av
        except ImportError:
            log.info("PyAV not installed: MP3 speech is decoded only once it has fully arrived")
            return
        self._codec = av.CodecContext.create("mp3", "r")

    def _frames_pcm(self, frames: Any) -> Pcm:
        out: list[Pcm] = []
        for frame in frames:
            self.sample_rate_hz = int(frame.sample_rate)
            arr = frame.to_ndarray()
            if arr.dtype.kind == "f":  # planar float (fltp): channels × samples
                mono = arr.reshape(len(frame.layout.channels), -1).mean(axis=0)
                out.append((np.clip(mono, -1.0, 1.0) * 32767).astype(np.int16))
            else:
                channels = len(frame.layout.channels)
                out.append(to_mono_int16(arr.reshape(-1).astype(np.int16), channels))
        return np.concatenate(out) if out else EMPTY

    def _decode(self, data: bytes | None) -> Pcm:
        try:
            frames = [f for p in self._codec.parse(data) for f in self._codec.decode(p)]
            if data is None:
                frames += list(self._codec.decode(None))
        except Exception as exc:  # PyAV raises its own error types (av.error.*)
            raise _bad(f"cannot decode MP3 speech: {exc}") from exc
        return self._frames_pcm(frames)

    def feed(self, data: bytes) -> Pcm:
        if self._codec is not None:
            return self._decode(data)
        self._whole.append(data)
        return EMPTY

    def flush(self) -> Pcm:
        if self._codec is not None:
            pcm = self._decode(None)
            if not self.sample_rate_hz:
                raise _bad("the speech response held no MP3 audio")
            return pcm
        try:
            from server.providers.tts.edge import decode_mp3
        except ImportError as exc:  # pragma: no cover - edge.py is part of the package
            raise ProviderUnavailable("MP3 needs PyAV or miniaudio") from exc
        try:
            pcm, self.sample_rate_hz = decode_mp3(b"".join(self._whole))
        except ImportError as exc:
            raise ProviderUnavailable(
                "MP3 speech needs PyAV or miniaudio: pip install av (or 'xiaozhi-py[edge]'), "
                "or set tts.openai.format to pcm or wav"
            ) from exc
        return pcm


def decoder_for(fmt: str, pcm_sample_rate_hz: int = 24000) -> StreamDecoder:
    """The decoder of a ``response_format`` (``pcm``, ``wav``, ``opus``, ``mp3``)."""
    if fmt == "pcm":
        return PcmDecoder(pcm_sample_rate_hz)
    if fmt == "wav":
        return WavDecoder()
    if fmt == "opus":
        return OggOpusDecoder()
    if fmt == "mp3":
        return Mp3Decoder()
    raise ProviderUnavailable(f"unsupported speech format {fmt!r}: use pcm, wav, mp3 or opus")


class Reframer:
    """Cuts decoded PCM into chunks of whole ``chunk_ms`` frames (the downlink's 60 ms) so every
    streamed piece but the last fills Opus frames exactly, whatever the socket delivered."""

    def __init__(self, chunk_ms: int = 60, min_chunks: int = 1) -> None:
        self.chunk_ms = chunk_ms
        self.min_chunks = min_chunks
        self._pending: list[Pcm] = []
        self._samples = 0

    def push(self, pcm: Pcm, sample_rate_hz: int) -> Pcm | None:
        """Add ``pcm``; returns the whole frames gathered (at least ``min_chunks``), else None."""
        if len(pcm):
            self._pending.append(pcm)
            self._samples += len(pcm)
        frame = sample_rate_hz * self.chunk_ms // 1000
        if frame <= 0 or self._samples < frame * self.min_chunks:
            return None
        joined = np.concatenate(self._pending)
        cut = len(joined) - len(joined) % frame
        rest = joined[cut:]
        self._pending, self._samples = ([rest], len(rest)) if len(rest) else ([], 0)
        return joined[:cut]

    def rest(self) -> Pcm | None:
        """What is left at the end (shorter than a frame), or None."""
        if not self._samples:
            return None
        joined = np.concatenate(self._pending)
        self._pending, self._samples = [], 0
        return joined
