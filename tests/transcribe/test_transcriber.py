"""PcmTranscriber (SpeechIn's PCM entry point, restarted after every endpoint) with fakes: a
loudness VAD and a recogniser that names how many chunks it heard."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from protocol.audio import Pcm
from server.config import VadSettings
from server.providers.base import AsrCapabilities, Transcript
from server.transcribe.transcriber import PartialText, PcmTranscriber, SegmentFinal, Update

WINDOW = 512


class LoudnessVad:
    name = "loudness"

    def create_stream(self) -> LoudnessVadStream:
        return LoudnessVadStream()


class LoudnessVadStream:
    window_ms = WINDOW / 16

    def __init__(self) -> None:
        self._rest = np.zeros(0, np.int16)

    def accept(self, pcm: Pcm) -> list[bool]:
        data = np.concatenate([self._rest, pcm])
        n = len(data) // WINDOW
        self._rest = data[n * WINDOW :]
        return [bool(np.abs(data[i * WINDOW : (i + 1) * WINDOW]).max() > 1000) for i in range(n)]

    def reset(self) -> None:
        self._rest = np.zeros(0, np.int16)


class CountingAsr:
    name = "counting"
    sample_rate_hz = 16000
    capabilities = AsrCapabilities()

    def create_stream(self, phrases: Sequence[str] | None = None) -> CountingStream:
        return CountingStream()


class CountingStream:
    def __init__(self) -> None:
        self.loud = 0

    def accept(self, pcm: Pcm) -> Transcript | None:
        if np.abs(pcm).max() > 1000:
            self.loud += 1
            return Transcript(f"loud {self.loud}", is_final=False)
        return None

    def finish(self) -> Transcript:
        return Transcript(f"heard {self.loud}", is_final=True, confidence=0.5)

    def close(self) -> None:
        pass


def audio(pattern: str) -> Pcm:
    """'#' = 0.5 s of a loud tone, '.' = 0.5 s of silence."""
    t = np.arange(8000) / 16000
    loud = (8000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)
    return np.concatenate([loud if c == "#" else np.zeros(8000, np.int16) for c in pattern])


def run(pattern: str, chunk: int) -> list[Update]:
    transcriber = PcmTranscriber(LoudnessVad(), CountingAsr(), VadSettings())
    pcm = audio(pattern)
    updates: list[Update] = []
    for at in range(0, len(pcm), chunk):
        updates += transcriber.feed(pcm[at : at + chunk], 0.0)
    updates += transcriber.finish(0.0)
    transcriber.close()
    return updates


def test_two_bursts_are_two_segments_with_partials_then_a_final() -> None:
    updates = run(".#....#", chunk=8000)
    finals = [u for u in updates if isinstance(u, SegmentFinal)]
    assert [f.segment for f in finals] == [0, 1]
    assert all(f.text.startswith("heard ") and f.confidence == 0.5 for f in finals)
    assert finals[0].start_ms < finals[0].end_ms <= finals[1].start_ms < finals[1].end_ms
    partials = [u for u in updates if isinstance(u, PartialText)]
    assert {p.segment for p in partials} == {0, 1}
    assert updates.index(finals[0]) < min(
        i for i, u in enumerate(updates) if isinstance(u, PartialText) and u.segment == 1
    )


def test_chunk_size_does_not_change_the_result() -> None:
    def texts(chunk: int) -> list[str]:
        return [u.text for u in run(".#....#", chunk) if isinstance(u, SegmentFinal)]

    assert texts(8000) == texts(333) == texts(960)


def test_silence_only_gives_no_segment() -> None:
    assert [u for u in run("....", 1600) if isinstance(u, SegmentFinal)] == []


def test_finish_ends_speech_that_runs_to_the_end() -> None:
    finals = [u for u in run(".##", 1600) if isinstance(u, SegmentFinal)]
    assert len(finals) == 1 and finals[0].segment == 0
