"""Ogg Opus (RFC 7845) written page by page, each page fsync'd: a crash keeps every whole page.

16 kHz mono input, 20 ms Opus frames; granule positions count 48 kHz samples (RFC 7845 §4).
:func:`read_packets` reads a file back (checking each page's CRC) for tests and tools.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import BinaryIO, Final

import numpy as np

from protocol.audio import Pcm
from protocol.opus import OpusEncoder

RATE_HZ: Final = 16000
FRAME_MS: Final = 20
FRAME_SAMPLES: Final = RATE_HZ * FRAME_MS // 1000
PRE_SKIP: Final = 312
"""Samples at 48 kHz the decoder drops at the start (the encoder's look-ahead)."""
MAX_PAGE_PACKETS: Final = 50
"""Packets per page (1 s of audio): a page stays well under 255 lacing values."""


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
        table.append(r & 0xFFFFFFFF)
    return table


_CRC = _crc_table()


def ogg_crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC[((crc >> 24) & 0xFF) ^ byte]
    return crc


def _page(packets: list[bytes], granule: int, serial: int, seq: int, flags: int) -> bytes:
    lacing = bytearray()
    for packet in packets:
        lacing += b"\xff" * (len(packet) // 255) + bytes([len(packet) % 255])
    header = struct.pack("<4sBBqIIIB", b"OggS", 0, flags, granule, serial, seq, 0, len(lacing))
    page = bytearray(header + lacing + b"".join(packets))
    struct.pack_into("<I", page, 22, ogg_crc(bytes(page)))
    return bytes(page)


class OggOpusWriter:
    """Append 16 kHz PCM; each :meth:`write` ends with whole pages on disk (fsync'd)."""

    def __init__(self, path: Path, *, serial: int = 0x58495A48) -> None:
        self._file: BinaryIO = open(path, "ab")  # noqa: SIM115 - closed in close()
        self._encoder = OpusEncoder(RATE_HZ, FRAME_MS, application="voip")
        self._serial, self._seq = serial, 0
        self._pending = np.zeros(0, dtype=np.int16)
        self._samples = 0
        head = struct.pack("<8sBBHIhB", b"OpusHead", 1, 1, PRE_SKIP, RATE_HZ, 0, 0)
        tags = b"OpusTags" + struct.pack("<I", 10) + b"xiaozhi-py" + struct.pack("<I", 0)
        self._write_page([head], 0, flags=0x02)
        self._write_page([tags], 0, flags=0)
        self._sync()

    @property
    def duration_ms(self) -> float:
        return self._samples * 1000 / RATE_HZ

    def write(self, pcm: Pcm) -> None:
        data = np.concatenate([self._pending, np.asarray(pcm, dtype=np.int16)])
        whole = len(data) - len(data) % FRAME_SAMPLES
        self._pending = data[whole:]
        packets = [
            self._encoder.encode(data[at : at + FRAME_SAMPLES])
            for at in range(0, whole, FRAME_SAMPLES)
        ]
        for at in range(0, len(packets), MAX_PAGE_PACKETS):
            batch = packets[at : at + MAX_PAGE_PACKETS]
            self._samples += len(batch) * FRAME_SAMPLES
            self._write_page(batch, self._granule(), flags=0)
        if packets:
            self._sync()

    def close(self) -> None:
        """Pad the last frame with silence and end the stream (EOS page)."""
        if self._file.closed:
            return
        packets = []
        if len(self._pending):
            frame = np.zeros(FRAME_SAMPLES, dtype=np.int16)
            frame[: len(self._pending)] = self._pending
            packets.append(self._encoder.encode(frame))
            self._samples += len(self._pending)
        self._write_page(packets, self._granule(), flags=0x04)
        self._sync()
        self._file.close()

    def _granule(self) -> int:
        return PRE_SKIP + self._samples * 3

    def _write_page(self, packets: list[bytes], granule: int, *, flags: int) -> None:
        self._file.write(_page(packets, granule, self._serial, self._seq, flags))
        self._seq += 1

    def _sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())


def read_packets(path: Path) -> tuple[list[bytes], int]:
    """(audio packets, last granule) of a file; stops at a torn or corrupt page."""
    data = path.read_bytes()
    packets: list[bytes] = []
    granule = 0
    at = 0
    partial = b""
    pages = 0
    while at + 27 <= len(data) and data[at : at + 4] == b"OggS":
        count = data[at + 26]
        lacing = data[at + 27 : at + 27 + count]
        size = 27 + count + sum(lacing)
        page = bytearray(data[at : at + size])
        if len(page) < size:
            break
        crc = struct.unpack_from("<I", page, 22)[0]
        struct.pack_into("<I", page, 22, 0)
        if ogg_crc(bytes(page)) != crc:
            break
        body = bytes(page[27 + count :])
        pos = 0
        for value in lacing:
            partial += body[pos : pos + value]
            pos += value
            if value < 255:
                if pages >= 2 and partial:
                    packets.append(partial)
                partial = b""
        granule = struct.unpack_from("<q", page, 6)[0]
        pages += 1
        at += size
    return packets, granule
