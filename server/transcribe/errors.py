"""The transcription service's errors: one base with a stable kebab-case ``code``.

    TranscribeError(code, message)
    ├── TokenRejected          401 at the handshake (code ``bad-token``; ``reason`` says why)
    ├── SequencedProtocolError bad ``/ws/asr`` input → error message + close 1007
    ├── UploadError            bad ``/ws/record`` input → error message + close 1007
    └── StreamsFull            no admission slot left → 503 (handshake) / 1013 (race)

The recordings package raises :class:`server.recordings.chunked.UploadRefused` (also coded).
"""

from __future__ import annotations


class TranscribeError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
