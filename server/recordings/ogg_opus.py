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


def packet_samples_48k(packet: bytes) -> int:
    """Duration of an Opus packet in 48 kHz samples, from its TOC byte (RFC 6716 §3.1)."""
    if not packet:
        return 0
    toc = packet[0]
    config, code = toc >> 3, toc & 3
    if config < 12:
        tenths = (100, 200, 400, 600)[config % 4]
    elif config < 16:
        tenths = (100, 200)[config % 2]
    else:
        tenths = (25, 50, 100, 200)[config % 4]
    frames = (
        1 if code == 0 else 2 if code in (1, 2) else (packet[1] & 0x3F if len(packet) > 1 else 0)
    )
    return tenths * 48 * frames // 10


class OggPacketWriter:
    """Ogg Opus of packets encoded elsewhere (any frame size): :meth:`add` buffers a packet,
    :meth:`flush` writes the buffered ones as one page and fsyncs; ``input_rate_hz`` is only
    informational (OpusHead), granules count 48 kHz samples from the packets' TOC bytes."""

    def __init__(self, path: Path, input_rate_hz: int, *, serial: int = 0x58495A48) -> None:
        self._file: BinaryIO = open(path, "ab")  # noqa: SIM115 - closed in close()
        self._serial, self._seq = serial, 0
        self._granule = PRE_SKIP
        self._buffer: list[bytes] = []
        head = struct.pack("<8sBBHIhB", b"OpusHead", 1, 1, PRE_SKIP, input_rate_hz, 0, 0)
        tags = b"OpusTags" + struct.pack("<I", 10) + b"xiaozhi-py" + struct.pack("<I", 0)
        self._write_page([head], 0, flags=0x02)
        self._write_page([tags], 0, flags=0)
        self._sync()

    @property
    def buffered_ms(self) -> float:
        return sum(packet_samples_48k(p) for p in self._buffer) / 48

    @property
    def duration_ms(self) -> float:
        return (self._granule - PRE_SKIP) / 48

    def add(self, packet: bytes) -> None:
        self._buffer.append(packet)

    def flush(self) -> None:
        """The buffered packets as pages (≤ ``MAX_PAGE_PACKETS`` each), on disk."""
        buffered, self._buffer = self._buffer, []
        for at in range(0, len(buffered), MAX_PAGE_PACKETS):
            batch = buffered[at : at + MAX_PAGE_PACKETS]
            self._granule += sum(packet_samples_48k(p) for p in batch)
            self._write_page(batch, self._granule, flags=0)
        if buffered:
            self._sync()

    def close(self, last: list[bytes] | None = None, *, granule: int | None = None) -> None:
        """Flush, then end the stream (EOS page holding ``last``)."""
        if self._file.closed:
            return
        self.flush()
        packets = last or []
        self._granule = (
            granule
            if granule is not None
            else self._granule + sum(packet_samples_48k(p) for p in packets)
        )
        self._write_page(packets, self._granule, flags=0x04)
        self._sync()
        self._file.close()

    def _write_page(self, packets: list[bytes], granule: int, *, flags: int) -> None:
        self._file.write(_page(packets, granule, self._serial, self._seq, flags))
        self._seq += 1

    def _sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())


class OggOpusWriter:
    """Append 16 kHz PCM; each :meth:`write` ends with whole pages on disk (fsync'd)."""

    def __init__(self, path: Path) -> None:
        self._pages = OggPacketWriter(path, RATE_HZ)
        self._encoder = OpusEncoder(RATE_HZ, FRAME_MS, application="voip")
        self._pending = np.zeros(0, dtype=np.int16)
        self._samples = 0

    @property
    def duration_ms(self) -> float:
        return self._samples * 1000 / RATE_HZ

    def write(self, pcm: Pcm) -> None:
        data = np.concatenate([self._pending, np.asarray(pcm, dtype=np.int16)])
        whole = len(data) - len(data) % FRAME_SAMPLES
        self._pending = data[whole:]
        for at in range(0, whole, FRAME_SAMPLES):
            self._pages.add(self._encoder.encode(data[at : at + FRAME_SAMPLES]))
        self._samples += whole
        self._pages.flush()

    def close(self) -> None:
        """Pad the last frame with silence and end the stream (EOS page; the granule says
        where the real audio ends)."""
        last = []
        if len(self._pending):
            frame = np.zeros(FRAME_SAMPLES, dtype=np.int16)
            frame[: len(self._pending)] = self._pending
            last.append(self._encoder.encode(frame))
            self._samples += len(self._pending)
        self._pages.close(last, granule=PRE_SKIP + self._samples * 3)


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
