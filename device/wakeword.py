"""Wake-word spotting on 16 kHz PCM with pocketsphinx keyphrase search (offline).

``spotter.feed(pcm)`` returns the phrase once it is heard, then listens afresh. The threshold
trades misses for false alarms (1e-40 suits short two-word phrases; raise it for fewer alarms).
"""

from __future__ import annotations

import logging
from typing import Any

from device.errors import WakeWordUnavailable
from protocol.audio import Pcm

logger = logging.getLogger(__name__)


__all__ = ["KeyphraseSpotter", "WakeWordUnavailable"]


class KeyphraseSpotter:
    """Keyphrase spotting; feed 16 kHz int16 mono frames of any length."""

    def __init__(self, phrase: str = "hey computer", threshold: float = 1e-40) -> None:
        try:
            from pocketsphinx import Decoder
        except ImportError as exc:
            raise WakeWordUnavailable(
                "wake word needs pocketsphinx: pip install pocketsphinx"
            ) from exc
        self.phrase = phrase.lower().strip()
        try:
            self._decoder: Any = Decoder(
                keyphrase=self.phrase, kws_threshold=threshold, samprate=16000, loglevel="FATAL"
            )
        except Exception as exc:  # RuntimeError: word not in the dictionary
            raise WakeWordUnavailable(f"pocketsphinx rejected {phrase!r}: {exc}") from exc
        self._decoder.start_utt()

    def feed(self, pcm: Pcm) -> str | None:
        """Process a chunk; the phrase when it was just spotted, else None."""
        self._decoder.process_raw(pcm.tobytes(), False, False)
        if self._decoder.hyp() is None:
            return None
        self._decoder.end_utt()
        self._decoder.start_utt()
        logger.info("wake word %r spotted", self.phrase)
        return self.phrase

    def close(self) -> None:
        self._decoder.end_utt()
