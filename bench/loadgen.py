"""The load generator's own cost: its CPU is measured, and its codec work done once, not per board.

A simulated board Opus-encodes every 60 ms uplink frame itself and decodes every downlink packet
it plays, like a real one. N boards saying the same utterances encode the same frames N times and
decode replies nobody listens to, so on a 2-core machine the simulator competes with the server
it measures. Inside :func:`lean_boards` (the bench's swarms run in it):

* **uplink**: every board's encoder is a :class:`SharedUplinkEncoder`. A frame is encoded once
  for the whole process and the packet is reused by every board that sends the same frame in the
  same place: the key is the frame's samples, the different frame before them and how many
  identical frames came in between (up to :data:`REPEATS`). So an utterance is encoded once, by
  the first board that says it, and the silence after it keeps its own run of packets (Opus DTX
  shrinks them over the first few frames) as a board's own encoder would send them. The packets
  are real Opus of the same encoder settings; the server decodes and hears them as before.
* **downlink**: the player's decoder is a :class:`CountingDecoder`: it reads how many samples a
  packet holds from its header (``opus_packet_get_nb_samples``) and hands back that much silence,
  so real-time playback, the drain that auto mode waits for, lateness and stale-frame counts are
  unchanged. No figure of these benchmarks listens to the reply audio.

Both patch module names of the device code for the duration of the ``with`` block (like
:mod:`bench.downlink`); when the device code no longer has them, the block runs the boards
unchanged and says so in :attr:`LeanStats.active`. A device-side API would make this a setting
(see the report of the performance issue): ``Utterance`` carrying its packets and the controller
sending them, and a ``Player`` option not to decode.

:class:`ClientCpu` measures this process's CPU (all threads) over a run, next to the server's.
"""

from __future__ import annotations

import ctypes
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from protocol.audio import Pcm, samples_per_frame
from protocol.errors import CorruptAudio
from protocol.opus import OpusEncoder

REPEATS = 8
"""Identical frames in a row told apart in the uplink cache (Opus DTX settles within ~6)."""


@dataclass
class LeanStats:
    """What the lean boards saved during one ``with`` block."""

    active: dict[str, bool] = field(default_factory=dict)
    """Per patch (``uplink``, ``downlink``): whether the device code had the name to patch."""
    encoded: int = 0
    """Uplink frames really encoded (cache misses)."""
    reused: int = 0
    """Uplink frames sent from the cache."""
    not_decoded: int = 0
    """Downlink packets counted instead of decoded."""
    cache: dict[tuple[Any, bytes, int, bytes], bytes] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "uplink_shared": self.active.get("uplink", False),
            "downlink_decoded": not self.active.get("downlink", False),
            "uplink_encoded": self.encoded,
            "uplink_reused": self.reused,
            "downlink_not_decoded": self.not_decoded,
        }


class SharedUplinkEncoder:
    """Drop-in for a board's ``OpusEncoder``: packets come from the process-wide cache."""

    stats: LeanStats = LeanStats()
    """Set by :func:`lean_boards` for the duration of its block."""

    def __init__(self, sample_rate_hz: int, frame_duration_ms: int = 60, **options: Any) -> None:
        self._encoder = OpusEncoder(sample_rate_hz, frame_duration_ms, **options)
        self._key = (sample_rate_hz, frame_duration_ms, tuple(sorted(options.items())))
        self.sample_rate_hz = sample_rate_hz
        self.frame_duration_ms = frame_duration_ms
        self.frame_samples = self._encoder.frame_samples
        self._previous = self._before = b""
        self._repeats = 0

    def encode(self, pcm: Pcm | bytes) -> bytes:
        raw = pcm if isinstance(pcm, bytes) else np.ascontiguousarray(pcm, np.int16).tobytes()
        if raw == self._previous:
            self._repeats = min(self._repeats + 1, REPEATS)
        else:
            self._before, self._previous, self._repeats = self._previous, raw, 0
        stats = type(self).stats
        key = (self._key, raw, self._repeats, self._before)
        packet = stats.cache.get(key)
        if packet is None:
            packet = stats.cache[key] = self._encoder.encode(raw)
            stats.encoded += 1
        else:
            stats.reused += 1
        return packet


def _nb_samples() -> Any:
    import opuslib.api

    fn = opuslib.api.libopus.opus_packet_get_nb_samples
    fn.argtypes = [ctypes.c_char_p, ctypes.c_int32, ctypes.c_int32]
    fn.restype = ctypes.c_int
    return fn


class CountingDecoder:
    """Drop-in for the player's ``OpusDecoder``: silence as long as the packet, not decoded."""

    stats: LeanStats = LeanStats()
    _nb = None

    def __init__(self, sample_rate_hz: int, frame_duration_ms: int = 60) -> None:
        self.sample_rate_hz = sample_rate_hz
        self.frame_duration_ms = frame_duration_ms
        self.frame_samples = samples_per_frame(sample_rate_hz, frame_duration_ms)
        if CountingDecoder._nb is None:
            CountingDecoder._nb = _nb_samples()
        self._silence: dict[int, Pcm] = {}

    def decode(self, packet: bytes) -> Pcm:
        if not packet:
            raise CorruptAudio("empty Opus packet")
        assert CountingDecoder._nb is not None
        n = int(CountingDecoder._nb(bytes(packet), len(packet), self.sample_rate_hz))
        if n <= 0:
            raise CorruptAudio(f"Opus packet of {len(packet)} bytes has no valid header ({n})")
        out = self._silence.get(n)
        if out is None:
            out = self._silence[n] = np.zeros(n, np.int16)
            out.flags.writeable = False
        type(self).stats.not_decoded += 1
        return out

    def reset(self) -> None:
        pass


def _patch(module: ModuleType, name: str, value: Any) -> Any | None:
    """Replace ``module.name``; the old value, or None when the module has no such name."""
    old = getattr(module, name, None)
    if old is None:
        return None
    setattr(module, name, value)
    return old


@contextmanager
def lean_boards(*, uplink: bool = True, downlink: bool = True) -> Iterator[LeanStats]:
    """Boards created inside share their uplink packets and count instead of decode."""
    import device.audio.player as player_module
    import device.controller as controller_module

    stats = LeanStats()
    SharedUplinkEncoder.stats = CountingDecoder.stats = stats
    patches: list[tuple[ModuleType, str, Any]] = []
    for wanted, kind, module, name, stand_in in (
        (uplink, "uplink", controller_module, "OpusEncoder", SharedUplinkEncoder),
        (downlink, "downlink", player_module, "OpusDecoder", CountingDecoder),
    ):
        old = _patch(module, name, stand_in) if wanted else None
        stats.active[kind] = old is not None
        if old is not None:
            patches.append((module, name, old))
    try:
        yield stats
    finally:
        for module, name, old in patches:
            setattr(module, name, old)


def process_cpu_s() -> float:
    """User + system CPU seconds of this process, all threads (children excluded)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class ClientCpu:
    """CPU of the load generator (this process) over a block: ``with ClientCpu() as c: …``."""

    def __enter__(self) -> ClientCpu:
        self.cpu_s = 0.0
        self.wall_s = 0.0
        self._c0, self._t0 = process_cpu_s(), time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu_s = process_cpu_s() - self._c0
        self.wall_s = time.monotonic() - self._t0

    def as_dict(self) -> dict[str, float | None]:
        wall = self.wall_s
        return {
            "cpu_s": round(self.cpu_s, 2),
            "cpu_pct": round(100 * self.cpu_s / wall, 1) if wall else None,
            "wall_s": round(wall, 1),
        }
