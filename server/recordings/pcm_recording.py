"""A transcription stream's recording: Ogg Opus audio plus one transcript line per segment."""

from __future__ import annotations

import json
import os
from typing import Any

from protocol.audio import Pcm
from server.recordings.ogg_opus import OggOpusWriter
from server.recordings.store import RecordingInfo, RecordingStore
from server.transcribe.transcriber import SegmentFinal


class PcmRecording:
    """:class:`~server.transcribe.streams.RecordingSink` writing ``audio.opus`` and
    ``transcript.jsonl`` in the recording's folder (blocking: called from the executor)."""

    def __init__(self, store: RecordingStore, info: RecordingInfo) -> None:
        self._store, self.info = store, info
        self._audio = OggOpusWriter(info.folder / "audio.opus")
        self._transcript = open(info.folder / "transcript.jsonl", "a", encoding="utf-8")  # noqa: SIM115

    def append(self, pcm: Pcm) -> None:
        self._audio.write(pcm)

    def segment(self, final: SegmentFinal) -> None:
        line: dict[str, Any] = {
            "segment": final.segment,
            "text": final.text,
            "start_ms": round(final.start_ms),
            "end_ms": round(final.end_ms),
            "confidence": final.confidence,
            "rejected": final.rejected,
        }
        self._transcript.write(json.dumps(line, ensure_ascii=False) + "\n")
        self._transcript.flush()
        os.fsync(self._transcript.fileno())

    def close(self) -> None:
        if self._transcript.closed:
            return
        self._audio.close()
        self._transcript.close()
        self._store.update(self.info, duration_ms=round(self._audio.duration_ms), complete=True)
