"""Each speaker's cepstral mean, kept between utterances for pocketsphinx's pooled decoders.

pocketsphinx normalises features by a running cepstral mean (CMN): its estimate of the
microphone and room, carried from one utterance to the next in the *decoder*. Decoders are
pooled, so before this a board was decoded with the mean of whichever session last used the
decoder: a noisy room, a fuzzing client or a fresh spare decoder changed what another board's
next command was heard as ("set the screen brightness" for "... to fifty" after noise;
measured). Now each utterance starts from its own speaker's mean (the board's, kept across
reconnects) or, for a speaker not heard yet, from the model's initial mean, and only its own
speaker's mean is updated after it, so what one board says never changes what another is heard
as, whichever decoder either gets.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Final

MAX_SPEAKERS: Final = 4096
"""Speakers whose mean is kept (least recently heard forgotten; 13 numbers each)."""


class SpeakerMeans:
    """``speaker → cepstral mean`` (pocketsphinx's ``get_cmn`` text); thread-safe."""

    def __init__(self, initial: str, capacity: int = MAX_SPEAKERS) -> None:
        self.initial = initial
        """The model's initial mean: where a speaker not heard yet (or no speaker) starts."""
        self._capacity = capacity
        self._means: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def start(self, speaker: str | None) -> str:
        """The mean an utterance of ``speaker`` starts from (None: anonymous, the initial)."""
        if speaker is None:
            return self.initial
        with self._lock:
            mean = self._means.get(speaker)
            if mean is None:
                return self.initial
            self._means.move_to_end(speaker)
            return mean

    def remember(self, speaker: str | None, mean: str) -> None:
        """``speaker``'s mean after an utterance (anonymous speakers keep nothing)."""
        if speaker is None:
            return
        with self._lock:
            self._means[speaker] = mean
            self._means.move_to_end(speaker)
            while len(self._means) > self._capacity:
                self._means.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._means)
