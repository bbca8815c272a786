"""English streaming ASR with PyPI ``pocketsphinx`` (bundled en-us model): the embedded default.

Two searches per decoder:

* grammar: ``create_stream(phrases)`` recognises exactly one of the phrases (a minimal word
  graph, cached by phrase-set hash; phrases with words not in the dictionary are dropped with
  one warning). RTF about 0.02; a grammar decoder holds only its grammars' words (about 6 MiB,
  25 ms to make; one full-dictionary decoder serves every lookup).
* free text: the bundled 3-gram LM (loaded into a decoder on first use, +64 MiB, RTF 0.25–0.5).

``settings.mode == "lm"`` always uses the LM; in ``grammar`` mode a stream without phrases falls
back to the LM. Decoders are pooled (``decoder_pool_size``) and shared by all sessions; how a
stream borrows one is in :mod:`server.providers.asr.pocketsphinx_stream`. Each utterance starts
from its speaker's cepstral mean, not the decoder's (:mod:`server.providers.asr.speaker_means`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
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
from server.providers.asr.pocketsphinx_native import NativeDecoding
from server.providers.asr.pocketsphinx_stream import PocketsphinxStream
from server.providers.asr.pool import Pool
from server.providers.asr.speaker_means import SpeakerMeans
from server.providers.base import AsrCapabilities, ProviderUnavailable

logger = logging.getLogger(__name__)

SAMPLE_RATE_HZ: Final = 16000
LM_SEARCH: Final = "lm"
MAX_GRAPHS: Final = 32
"""Phrase sets whose word graph is kept (provider-wide)."""
MAX_SEARCHES_PER_DECODER: Final = 4
"""Grammar searches kept loaded in each decoder."""
EMPTY_DICT: Final = os.devnull
"""A lean decoder's dictionary file: nothing (its grammar words are added as needed)."""
PLAIN_GRAMMAR_TOPN: Final = 2
"""Gaussians scored per frame by a grammar decoder without phone loops (pocketsphinx: 4)."""
PLAIN_GRAMMAR_WIP: Final = 0.05
"""Word insertion probability of a grammar decoder without phone loops (pocketsphinx: 0.65).
Where a phrase may go on by one word ("thirty" or "thirty eight"), the default let the fall
of the last word into silence be heard as one more (6 of 864 commands through SpeechIn, 4
voices, 9 frame offsets; 1 with this). Not with the phone loops: each garbage phone is a word
there, so this would change what they reject."""
HANDOVER_POLL_S: Final = 0.05
"""How often a finishing stream with no decoder looks again (a finish takes ~5-50 ms)."""


class _Decoder:
    """A pocketsphinx decoder plus the searches it has loaded.

    A *lean* decoder starts with an empty dictionary (~15 ms to make instead of ~150-200 ms for
    the 135,000-word one, during which pocketsphinx holds the GIL and so stalls every session)
    and is given the pronunciations of each grammar's words, from ``lexicon``, as it loads it.
    It swaps in a full-dictionary decoder the first time it needs the free-text LM."""

    def __init__(
        self,
        raw: Any,
        lm_path: str,
        garbage: tuple[float, float | None] | None = None,
        *,
        lexicon: Callable[[str], list[tuple[str, str]]] | None = None,
        full: Callable[[], Any] | None = None,
        native: NativeDecoding | None = None,
    ) -> None:
        self.raw = raw
        self._native = native
        self.native_pointer = native.pointer(raw) if native else None
        """``raw``'s C decoder for :class:`NativeDecoding` (None: decode through the binding)."""
        self._lm_path = lm_path
        self._garbage = garbage
        """(phone probability, exit probability) of the garbage loops, None: off."""
        self._lexicon = lexicon
        """Lean: ``word -> [(dictionary entry, phones)]`` to add the grammar's words from."""
        self._full = full
        """Lean: makes the full-dictionary decoder the LM needs."""
        self._words: set[str] = set()
        self._add_garbage_words()
        self._searches: OrderedDict[str, None] = OrderedDict()
        self.has_lm = False

    def _add_garbage_words(self) -> None:
        if self._garbage is not None:
            for i, phone in enumerate(PHONES):
                self.raw.add_word(garbage_word(phone), phone, i == len(PHONES) - 1)

    def use_lm(self) -> None:
        if self._lexicon is not None and self._full is not None:  # lean: become a full one
            self.raw, self._lexicon = self._full(), None
            self.native_pointer = self._native.pointer(self.raw) if self._native else None
            self._searches.clear()
            self._add_garbage_words()
        if not self.has_lm:
            self.raw.add_lm_file(LM_SEARCH, self._lm_path)
            self.has_lm = True
        self.raw.activate_search(LM_SEARCH)

    def decode(self, data: bytes, slice_bytes: int) -> None:
        """Decode 16-bit PCM: in one call without the GIL when possible, else through the
        binding in ``slice_bytes`` pieces (it holds the GIL; short calls keep the loop going)."""
        if self._native is not None and self.native_pointer is not None:
            self._native.process(self.native_pointer, data)
            return
        for start in range(0, len(data), slice_bytes):
            self.raw.process_raw(data[start : start + slice_bytes], False, False)

    def _add_words(self, graph: WordGraph) -> None:
        """Lean: give the decoder the pronunciations of the graph's words it lacks."""
        if self._lexicon is None:
            return
        entries = [
            entry
            for word in sorted({w for phrase in graph.phrases for w in phrase} - self._words)
            for entry in self._lexicon(word)
        ]
        self._words.update(w for phrase in graph.phrases for w in phrase)
        for i, (name, phones) in enumerate(entries):
            self.raw.add_word(name, phones, i == len(entries) - 1)

    def use_grammar(self, name: str, graph: WordGraph) -> None:
        if name in self._searches:
            self._searches.move_to_end(name)
        else:
            self._add_words(graph)
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
        self.native = NativeDecoding.load(pocketsphinx._pocketsphinx)
        """Decoding without the GIL (server.providers.asr.pocketsphinx_native), if available."""
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
            self._new_decoder,
            settings.decoder_pool_size,
            acquire_timeout_s,
            spare=settings.spare_decoders if self.mode == "grammar" else 0,
            spare_factory=self._spare_decoder,
        )
        self._last_grammar: tuple[str, WordGraph] | None = None
        """The grammar an utterance used last: spare decoders load it before they are needed."""
        self._lexicon = self._raw_decoder()  # the full dictionary, for lookups only
        self._lexicon_lock = threading.Lock()
        first = self._new_decoder()  # fail at startup, not on the first utterance
        self.means = SpeakerMeans(first.raw.get_cmn(False))
        """Each speaker's cepstral mean (the model's initial one before it is heard)."""
        self._pool.add(first)
        self._pool.start_spares()
        self._holders: set[PocketsphinxStream] = set()
        """Streams holding a decoder in mid-utterance."""
        self._holders_lock = threading.Lock()

    @property
    def pool(self) -> Pool[_Decoder]:
        return self._pool

    def _raw_decoder(self, *, lean: bool = False) -> Any:
        """A pocketsphinx decoder; ``lean``: with an empty dictionary."""
        try:
            # grammar mode takes the Viterbi result, no lattice best-path pass: with the phone
            # loops that pass took 1-6 s per utterance for the same accuracy; on the plain
            # grammar it made more errors ("thirty" heard as "thirty eight"): 9 of 864
            # commands through SpeechIn (4 voices, 9 frame offsets) against 6 without it
            extra: dict[str, Any] = {"bestpath": False} if self.mode == "grammar" else {}
            if lean:
                extra["dict"] = str(EMPTY_DICT)
                if not self.garbage:
                    # the 2 best Gaussians per frame instead of 4: 15 % less decoding CPU at the
                    # same command accuracy on the plain grammar (75 clips, 5 voices, through
                    # SpeechIn); with the phone loops it lost 2 of 75 commands, so not there
                    extra["topn"] = PLAIN_GRAMMAR_TOPN
                    extra["wip"] = PLAIN_GRAMMAR_WIP
            return self._ps.Decoder(lm=None, loglevel="FATAL", **extra)
        except Exception as exc:  # the bundled model is broken or missing
            raise ProviderUnavailable(
                f"pocketsphinx failed to start ({exc}); run `make setup`"
            ) from exc

    def _new_decoder(self) -> _Decoder:
        if self.mode == "lm":
            decoder = _Decoder(self._raw_decoder(), self._lm_path, self.garbage, native=self.native)
            decoder.use_lm()
            return decoder
        return _Decoder(
            self._raw_decoder(lean=True),
            self._lm_path,
            self.garbage,
            lexicon=self.pronunciations,
            full=self._raw_decoder,
            native=self.native,
        )

    def _spare_decoder(self) -> _Decoder:
        """A decoder made ahead of need, with the last grammar already loaded."""
        decoder = self._new_decoder()
        last = self._last_grammar
        if last is not None:
            decoder.use_grammar(*last)
        return decoder

    def pronunciations(self, word: str) -> list[tuple[str, str]]:
        """``[(dictionary entry, phones)]`` of ``word``: ``word``, ``word(2)``, ... (empty if
        the dictionary lacks it)."""
        found: list[tuple[str, str]] = []
        with self._lexicon_lock:
            name = word
            while (phones := self._lexicon.lookup_word(name)) is not None:
                found.append((name, phones))
                name = f"{word}({len(found) + 1})"
        return found

    def create_stream(self, phrases: Sequence[str] | None = None) -> PocketsphinxStream:
        """Cheap and non-blocking; the decoder is taken on the first ``accept``. An anonymous
        speaker: the utterance starts from the model's initial cepstral mean."""
        return self.create_speaker_stream(phrases, None)

    def create_speaker_stream(
        self, phrases: Sequence[str] | None, speaker: str | None
    ) -> PocketsphinxStream:
        """As :meth:`create_stream`, adapted to ``speaker``'s channel: the utterance starts
        from the cepstral mean ``speaker``'s last utterance ended with."""
        chosen = tuple(phrases) if phrases and self.mode == "grammar" else None
        return PocketsphinxStream(self, chosen, speaker)

    def word_graph(self, phrases: Sequence[str]) -> tuple[str, WordGraph]:
        """The word graph for ``phrases`` and its search name, cached by the phrases as given
        (sessions pass the same tuple every utterance; normalising 2,000 phrases costs ~3 ms)."""
        exact = tuple(phrases)
        with self._graphs_lock:
            cached = self._graphs.get(exact)
            if cached is not None:
                self._graphs.move_to_end(exact)
                return cached
        normalized = normalize(exact)
        graph = build_word_graph(
            [" ".join(p) for p in normalized], lambda w: bool(self.pronunciations(w))
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

    def start_utterance(
        self, decoder: _Decoder, phrases: Sequence[str] | None, cepstral_mean: str
    ) -> None:
        """Set ``decoder`` up for ``phrases`` (or the LM), starting from ``cepstral_mean``
        (``get_cmn`` text); on failure it goes back to the pool."""
        try:
            graph = None
            if phrases:
                try:
                    name, graph = self.word_graph(phrases)
                except ValueError:
                    logger.warning("ASR grammar has no usable phrase; using the free-text LM")
            if graph is not None:
                decoder.use_grammar(name, graph)
                self._last_grammar = (name, graph)
            else:
                decoder.use_lm()
            # the speaker's mean, not the decoder's last user's: a fresh feature stage (0.1 ms;
            # set_cmn alone leaves the old running sums in) set to it (speaker_means)
            decoder.raw.reinit_feat()
            decoder.raw.set_cmn(cepstral_mean)
            decoder.raw.start_utt()
        except BaseException:
            self._pool.release(decoder)
            raise


def create(settings: AsrSettings) -> PocketsphinxAsr:
    return PocketsphinxAsr(settings)
