"""Ogg Opus pages: valid CRCs, granules, and a torn last page costs only that page."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from protocol.opus import OpusDecoder
from server.recordings.ogg_opus import PRE_SKIP, OggOpusWriter, read_packets


def tone(seconds: float) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    return (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)


def test_written_file_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "a.opus"
    writer = OggOpusWriter(path)
    for _ in range(5):
        writer.write(tone(0.25))
    writer.close()
    packets, granule = read_packets(path)
    assert len(packets) == 63  # 62.5 frames of 20 ms: the last one padded
    assert granule == PRE_SKIP + 5 * 4000 * 3
    decoder = OpusDecoder(16000, 20)
    pcm = np.concatenate([decoder.decode(p) for p in packets])
    assert len(pcm) == 63 * 320 and np.abs(pcm).max() > 3000
    assert path.read_bytes()[:4] == b"OggS"


def test_torn_tail_keeps_every_whole_page(tmp_path: Path) -> None:
    path = tmp_path / "b.opus"
    writer = OggOpusWriter(path)
    writer.write(tone(1.0))
    size = path.stat().st_size
    writer.write(tone(1.0))
    whole, _ = read_packets(path)
    with open(path, "r+b") as f:  # a crash in the middle of the second page
        f.truncate(size + 40)
    packets, _ = read_packets(path)
    assert len(packets) == 50 and len(whole) == 100
