"""Opus encoder/decoder over ``opuslib``, for 8/12/16/24/48 kHz and 20/40/60 ms mono frames.

``opuslib`` needs the system library ``libopus``; when either is missing, constructing a codec
raises :class:`CodecUnavailable` naming the package to install. opuslib makes the codec states;
packets go through its ctypes bindings of ``opus_encode``/``opus_decode`` directly, into buffers
allocated once per codec (opuslib's own ``decode`` builds a Python list of every sample, which
made this layer 0.64–0.77 × raw opuslib; now it is faster than raw opuslib).
"""

from __future__ import annotations

import ctypes
from typing import Any, Final

import numpy as np

from protocol.audio import Pcm, check_opus_params, samples_per_frame
from protocol.errors import CodecUnavailable, CorruptAudio

_INSTALL_HINT: Final = (
    "install the system Opus library (Debian/Ubuntu: `sudo apt-get install libopus0`, "
    "macOS: `brew install opus`) and the Python binding (`pip install opuslib`), "
    "or run `make setup`"
)


def _opuslib() -> Any:
    try:
        import opuslib
    except ImportError as exc:
        raise CodecUnavailable(f"Python package 'opuslib' is missing: {_INSTALL_HINT}") from exc
    except Exception as exc:  # opuslib raises a bare Exception when libopus is not found
        raise CodecUnavailable(f"libopus could not be loaded ({exc}): {_INSTALL_HINT}") from exc
    return opuslib


def _reason(lib: Any, code: int) -> str:
    """libopus's text for an error code ("corrupted stream")."""
    return bytes(lib.api.info.strerror(code)).decode("ascii", "replace")


MAX_PACKET_BYTES: Final = 4000
"""Output buffer of one encode: libopus's recommended maximum packet size."""


class OpusEncoder:
    """Encodes int16 mono PCM frames of exactly ``frame_duration_ms`` into Opus packets."""

    def __init__(
        self,
        sample_rate_hz: int,
        frame_duration_ms: int = 60,
        *,
        application: str = "audio",
        complexity: int | None = None,
        bitrate_bps: int | None = None,
        dtx: bool = False,
    ) -> None:
        check_opus_params(sample_rate_hz, frame_duration_ms)
        lib = _opuslib()
        apps = {
            "audio": lib.APPLICATION_AUDIO,
            "voip": lib.APPLICATION_VOIP,
            "lowdelay": lib.APPLICATION_RESTRICTED_LOWDELAY,
        }
        self.sample_rate_hz = sample_rate_hz
        self.frame_duration_ms = frame_duration_ms
        self.frame_samples = samples_per_frame(sample_rate_hz, frame_duration_ms)
        self._encoder = lib.Encoder(sample_rate_hz, 1, apps[application])
        if complexity is not None:
            self._encoder.complexity = complexity
        if bitrate_bps is not None:
            self._encoder.bitrate = bitrate_bps
        if dtx:
            self._encoder.dtx = 1
        self._lib = lib
        self._state = self._encoder.encoder_state
        self._encode = lib.api.encoder.libopus_encode
        self._int16_pointer = lib.api.c_int16_pointer
        self._out = ctypes.create_string_buffer(MAX_PACKET_BYTES)

    def encode(self, pcm: Pcm | bytes) -> bytes:
        """Encode one frame (``frame_samples`` int16 samples) into one Opus packet."""
        raw = pcm if isinstance(pcm, bytes) else np.ascontiguousarray(pcm, np.int16).tobytes()
        if len(raw) != self.frame_samples * 2:
            raise CorruptAudio(
                f"encoder needs {self.frame_samples} samples per frame, got {len(raw) // 2}"
            )
        size = self._encode(
            self._state,
            ctypes.cast(raw, self._int16_pointer),  # type: ignore[arg-type]  # bytes cast as opuslib does
            self.frame_samples,
            self._out,
            MAX_PACKET_BYTES,
        )
        if size < 0:
            raise CorruptAudio(f"Opus encode failed: {_reason(self._lib, size)}")
        return self._out.raw[:size]


class OpusDecoder:
    """Decodes Opus packets into int16 mono PCM at ``sample_rate_hz``."""

    def __init__(self, sample_rate_hz: int, frame_duration_ms: int = 60) -> None:
        check_opus_params(sample_rate_hz, frame_duration_ms)
        lib = _opuslib()
        self.sample_rate_hz = sample_rate_hz
        self.frame_duration_ms = frame_duration_ms
        self.frame_samples = samples_per_frame(sample_rate_hz, frame_duration_ms)
        # Room for the longest legal Opus packet (120 ms) so odd senders do not fail.
        self._max_samples = samples_per_frame(sample_rate_hz, 120)
        self._decoder = lib.Decoder(sample_rate_hz, 1)
        self._lib = lib
        self._state = self._decoder.decoder_state
        self._decode = lib.api.decoder.libopus_decode
        self._pcm = np.zeros(self._max_samples, np.int16)
        self._pcm_pointer = self._pcm.ctypes.data_as(lib.api.c_int16_pointer)

    def decode(self, packet: bytes) -> Pcm:
        """Decode one packet; raises :class:`CorruptAudio` on a packet that does not decode."""
        if not packet:
            raise CorruptAudio("empty Opus packet")
        data = packet if isinstance(packet, bytes) else bytes(packet)
        n = self._decode(self._state, data, len(data), self._pcm_pointer, self._max_samples, 0)
        if n < 0:
            raise CorruptAudio(f"corrupt Opus packet of {len(data)} bytes: {_reason(self._lib, n)}")
        return self._pcm[:n].copy()

    def reset(self) -> None:
        """Forget the decoder state (start of a new stream)."""
        self._decoder.reset_state()
