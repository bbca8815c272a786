"""English streaming ASR with PyPI ``pocketsphinx`` (bundled en-us model): the embedded default.

Two searches per decoder:

* grammar: ``create_stream(phrases)`` recognises exactly one of the phrases (a minimal word
  graph, cached by phrase-set hash; phrases with words not in the dictionary are dropped with
  one warning). RTF about 0.02; a decoder without the LM is about 28 MiB.
* free text: the bundled 3-gram LM (loaded into a decoder on first use, +64 MiB, RTF 0.25–0.5).

``settings.mode == "lm"`` always uses the LM; in ``grammar`` mode a stream without phrases falls
back to the LM. Decoders are pooled (``decoder_pool_size``) and shared by all sessions; how a
stream borrows one is in :mod:`server.providers.asr.pocketsphinx_stream`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Final

from server.config import AsrSettings
from server.providers.asr.grammar import (
    PHONES,
    WordGraph,
    build_word_graph,
    garbage_word,
    normalize,
    phrase_set_key,
    with_garbage_loop,
)
from server.providers.asr.pocketsphinx_stream import PocketsphinxStream
from server.providers.asr.pool import Pool
from server.providers.base import AsrCapabilities, ProviderUnavailable

logger = logging.getLogger(__name__)

SAMPLE_RATE_HZ: Final = 16000
LM_SEARCH: Final = "lm"
MAX_GRAPHS: Final = 32
"""Phrase sets whose word graph is kept (provider-wide)."""
MAX_SEARCHES_PER_DECODER: Final = 4
"""Grammar searches kept loaded in each decoder."""
HANDOVER_POLL_S: Final = 0.05
"""How often a finishing stream with no decoder looks again (a finish takes ~5-50 ms)."""


class _Decoder:
    """A pocketsphinx decoder plus the searches it has loaded."""

    def __init__(
        self, raw: Any, lm_path: str, garbage: tuple[float, float | None] | None = None
    ) -> None:
        self.raw = raw
        self._lm_path = lm_path
        self._garbage = garbage
        """(phone probability, exit probability) of the garbage loops, None: off."""
        if garbage is not None:
            for i, phone in enumerate(PHONES):
                raw.add_word(garbage_word(phone), phone, i == len(PHONES) - 1)
        self._searches: OrderedDict[str, None] = OrderedDict()
        self.has_lm = False

    def use_lm(self) -> None:
        if not self.has_lm:
            self.raw.add_lm_file(LM_SEARCH, self._lm_path)
            self.has_lm = True
        self.raw.activate_search(LM_SEARCH)

    def use_grammar(self, name: str, graph: WordGraph) -> None:
        if name in self._searches:
            self._searches.move_to_end(name)
        else:
            transitions = (
                graph.transitions
                if self._garbage is None
                else with_garbage_loop(graph, *self._garbage)
            )
            fsg = self.raw.create_fsg(name, graph.start, graph.final, transitions)
            self.raw.add_fsg(name, fsg)
            self._searches[name] = None
        self.raw.activate_search(name)
        while len(self._searches) > MAX_SEARCHES_PER_DECODER:
            old, _ = self._searches.popitem(last=False)
            self.raw.remove_search(old)


class PocketsphinxAsr:
    """The provider (registry name ``pocketsphinx``); thread-safe, shared by all sessions."""

    name = "pocketsphinx"
    sample_rate_hz = SAMPLE_RATE_HZ

    def __init__(self, settings: AsrSettings, *, acquire_timeout_s: float = 10.0) -> None:
        language = settings.language.lower()
        if not (language.startswith("en") or language == "auto"):
            raise ProviderUnavailable(
                f"pocketsphinx here recognises English only, not {settings.language!r}; "
                "use the twopass or whisper provider (English and Mandarin, docs/speech.md)"
            )
        try:
            import pocketsphinx
        except ImportError as exc:
            raise ProviderUnavailable(
                f"pocketsphinx is not installed ({exc}); run `make setup`"
            ) from exc
        self._ps = pocketsphinx
        self._lm_path = pocketsphinx.get_model_path("en-us/en-us.lm.bin")
        self.mode = settings.mode
        phone_p = settings.garbage_phone_probability
        self.garbage = None if phone_p is None else (phone_p, settings.garbage_exit_probability)
        self.capabilities = AsrCapabilities(
            grammar=self.mode == "grammar", free_text=self.mode != "grammar"
        )
        self._graphs: OrderedDict[tuple[str, ...], tuple[str, WordGraph]] = OrderedDict()
        self._graphs_lock = threading.Lock()
        self._pool: Pool[_Decoder] = Pool(
            self._new_decoder, settings.decoder_pool_size, acquire_timeout_s
        )
        self._pool.add(self._new_decoder())  # fail at startup, not on the first utterance
        self._holders: set[PocketsphinxStream] = set()
        """Streams holding a decoder in mid-utterance."""
        self._holders_lock = threading.Lock()

    @property
    def pool(self) -> Pool[_Decoder]:
        return self._pool

    def _new_decoder(self) -> _Decoder:
        try:
            # no lattice best-path pass with the garbage loops: on their huge lattices it took
            # 1-6 s per utterance for the same accuracy (the Viterbi result is used; measured)
            extra = {"bestpath": False} if self.garbage and self.mode == "grammar" else {}
            raw = self._ps.Decoder(lm=None, loglevel="FATAL", **extra)
        except Exception as exc:  # the bundled model is broken or missing
            raise ProviderUnavailable(
                f"pocketsphinx failed to start ({exc}); run `make setup`"
            ) from exc
        decoder = _Decoder(raw, self._lm_path, self.garbage)
        if self.mode == "lm":
            decoder.use_lm()
        return decoder

    def create_stream(self, phrases: Sequence[str] | None = None) -> PocketsphinxStream:
        """Cheap and non-blocking; the decoder is taken on the first ``accept``."""
        chosen = tuple(phrases) if phrases and self.mode == "grammar" else None
        return PocketsphinxStream(self, chosen)

    def word_graph(self, phrases: Sequence[str], decoder: _Decoder) -> tuple[str, WordGraph]:
        """The word graph for ``phrases`` and its search name, cached by the phrases as given
        (sessions pass the same tuple every utterance; normalising 2,000 phrases costs ~3 ms)."""
        exact = tuple(phrases)
        with self._graphs_lock:
            cached = self._graphs.get(exact)
            if cached is not None:
                self._graphs.move_to_end(exact)
                return cached
        normalized = normalize(exact)
        raw = decoder.raw
        graph = build_word_graph(
            [" ".join(p) for p in normalized], lambda w: raw.lookup_word(w) is not None
        )
        if graph.unknown_words:
            logger.warning(
                "ASR grammar: dropped %d of %d phrases with words not in the dictionary: %s",
                len(normalized) - len(graph.phrases),
                len(normalized),
                ", ".join(graph.unknown_words),
            )
        entry = (f"g{phrase_set_key(normalized)}", graph)
        with self._graphs_lock:
            self._graphs[exact] = entry
            while len(self._graphs) > MAX_GRAPHS:
                self._graphs.popitem(last=False)
        return entry

    def holders_add(self, stream: PocketsphinxStream) -> None:
        with self._holders_lock:
            self._holders.add(stream)

    def holders_discard(self, stream: PocketsphinxStream) -> None:
        with self._holders_lock:
            self._holders.discard(stream)

    def decoder_for_finish(self, stream: PocketsphinxStream) -> _Decoder:
        """A decoder for a stream at its end: a free one, else one handed over by a stream in
        mid-utterance, else wait (the pool's timeout) for one. Raises ``PoolBusy``."""
        deadline = time.monotonic() + self._pool.timeout_s
        while True:
            decoder = self._pool.try_acquire()
            if decoder is not None:
                return decoder
            with self._holders_lock:
                others = [h for h in self._holders if h is not stream]
            for other in others:
                decoder = other.hand_over()
                if decoder is not None:
                    return decoder
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return self._pool.acquire(timeout_s=0.0)  # raises PoolBusy
            self._pool.wait_for_release(min(HANDOVER_POLL_S, remaining))

    def start_utterance(self, decoder: _Decoder, phrases: Sequence[str] | None) -> None:
        """Set ``decoder`` up for ``phrases`` (or the LM); on failure it goes back to the pool."""
        try:
            graph = None
            if phrases:
                try:
                    name, graph = self.word_graph(phrases, decoder)
                except ValueError:
                    logger.warning("ASR grammar has no usable phrase; using the free-text LM")
            if graph is not None:
                decoder.use_grammar(name, graph)
            else:
                decoder.use_lm()
            decoder.raw.start_utt()
        except BaseException:
            self._pool.release(decoder)
            raise


def create(settings: AsrSettings) -> PocketsphinxAsr:
    return PocketsphinxAsr(settings)
