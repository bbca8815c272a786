"""English streaming ASR with PyPI ``pocketsphinx`` (bundled en-us model): the embedded default.

Two searches per decoder:

* grammar: ``create_stream(phrases)`` recognises exactly one of the phrases (a minimal word
  graph, cached by phrase-set hash; phrases with words not in the dictionary are dropped with
  one warning). RTF about 0.02; a decoder without the LM is about 28 MiB.
* free text: the bundled 3-gram LM (loaded into a decoder on first use, +64 MiB, RTF 0.25–0.5).

``settings.mode == "lm"`` always uses the LM; in ``grammar`` mode a stream without phrases falls
back to the LM. Decoders are pooled (``decoder_pool_size``) and shared by all sessions: a stream
takes one on its first :meth:`~PocketsphinxStream.accept` (blocking, bounded wait: call it from
the executor) and gives it back on :meth:`~PocketsphinxStream.finish` or ``close``.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Final

import numpy as np

from protocol.audio import Pcm
from server.config import AsrSettings
from server.providers.asr.grammar import WordGraph, build_word_graph, normalize, phrase_set_key
from server.providers.asr.pool import Pool
from server.providers.base import ProviderUnavailable, Transcript

logger = logging.getLogger(__name__)

SAMPLE_RATE_HZ: Final = 16000
LM_SEARCH: Final = "lm"
MAX_GRAPHS: Final = 32
"""Phrase sets whose word graph is kept (provider-wide)."""
MAX_SEARCHES_PER_DECODER: Final = 4
"""Grammar searches kept loaded in each decoder."""


class _Decoder:
    """A pocketsphinx decoder plus the searches it has loaded."""

    def __init__(self, raw: Any, lm_path: str) -> None:
        self.raw = raw
        self._lm_path = lm_path
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
            fsg = self.raw.create_fsg(name, graph.start, graph.final, graph.transitions)
            self.raw.add_fsg(name, fsg)
            self._searches[name] = None
        self.raw.activate_search(name)
        while len(self._searches) > MAX_SEARCHES_PER_DECODER:
            old, _ = self._searches.popitem(last=False)
            self.raw.remove_search(old)


class PocketsphinxStream:
    """One utterance. ``accept``/``finish`` block (decoding): run them in the executor."""

    def __init__(self, provider: PocketsphinxAsr, phrases: Sequence[str] | None) -> None:
        self._provider = provider
        self._phrases = list(phrases) if phrases else None
        self._decoder: _Decoder | None = None
        self._last = ""
        self._final: Transcript | None = None
        self._closed = False
        self._lock = threading.Lock()

    def accept(self, pcm: Pcm) -> Transcript | None:
        with self._lock:
            if self._closed or self._final is not None:
                raise RuntimeError("ASR stream already finished")
            if self._decoder is None:
                self._decoder = self._provider._start_utterance(self._phrases)
            data = np.ascontiguousarray(pcm, dtype=np.int16).tobytes()
            if not data:
                return None
            self._decoder.raw.process_raw(data, False, False)
            text = _hyp_text(self._decoder.raw)
            if text == self._last:
                return None
            self._last = text
            return Transcript(text, is_final=False)

    def finish(self) -> Transcript:
        with self._lock:
            if self._final is None:
                text = ""
                if self._decoder is not None:
                    self._decoder.raw.end_utt()
                    text = _hyp_text(self._decoder.raw)
                    self._give_back()
                self._final = Transcript(text, is_final=True)
            return self._final

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._decoder is not None:
                try:
                    self._decoder.raw.end_utt()
                finally:
                    self._give_back()

    def _give_back(self) -> None:
        decoder, self._decoder = self._decoder, None
        if decoder is not None:
            self._provider._pool.release(decoder)


def _hyp_text(raw: Any) -> str:
    hyp = raw.hyp()
    return " ".join(hyp.hypstr.split()) if hyp is not None else ""


class PocketsphinxAsr:
    """The provider (registry name ``pocketsphinx``); thread-safe, shared by all sessions."""

    name = "pocketsphinx"
    sample_rate_hz = SAMPLE_RATE_HZ

    def __init__(self, settings: AsrSettings, *, acquire_timeout_s: float = 10.0) -> None:
        if not settings.language.lower().startswith("en"):
            raise ProviderUnavailable(
                f"pocketsphinx here recognises English only, not {settings.language!r}; "
                "use the sherpa provider with a model for that language"
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
        self._graphs: OrderedDict[str, WordGraph] = OrderedDict()
        self._graphs_lock = threading.Lock()
        self._pool: Pool[_Decoder] = Pool(
            self._new_decoder, settings.decoder_pool_size, acquire_timeout_s
        )
        self._pool.add(self._new_decoder())  # fail at startup, not on the first utterance

    @property
    def pool(self) -> Pool[_Decoder]:
        return self._pool

    def _new_decoder(self) -> _Decoder:
        try:
            raw = self._ps.Decoder(lm=None, loglevel="FATAL")
        except Exception as exc:  # the bundled model is broken or missing
            raise ProviderUnavailable(
                f"pocketsphinx failed to start ({exc}); run `make setup`"
            ) from exc
        decoder = _Decoder(raw, self._lm_path)
        if self.mode == "lm":
            decoder.use_lm()
        return decoder

    def create_stream(self, phrases: Sequence[str] | None = None) -> PocketsphinxStream:
        """Cheap and non-blocking; the decoder is taken on the first ``accept``."""
        return PocketsphinxStream(self, phrases if self.mode == "grammar" else None)

    def word_graph(self, phrases: Sequence[str], decoder: _Decoder) -> tuple[str, WordGraph]:
        """The cached word graph for ``phrases`` and its search name."""
        normalized = normalize(phrases)
        key = phrase_set_key(normalized)
        with self._graphs_lock:
            graph = self._graphs.get(key)
            if graph is not None:
                self._graphs.move_to_end(key)
                return f"g{key}", graph
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
        with self._graphs_lock:
            self._graphs[key] = graph
            while len(self._graphs) > MAX_GRAPHS:
                self._graphs.popitem(last=False)
        return f"g{key}", graph

    def _start_utterance(self, phrases: list[str] | None) -> _Decoder:
        decoder = self._pool.acquire()
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
        return decoder


def create(settings: AsrSettings) -> PocketsphinxAsr:
    return PocketsphinxAsr(settings)
