"""Streaming ASR with a user-downloaded sherpa-onnx model (any language the model knows).

``settings.sherpa`` names a streaming model (transducer, paraformer, zipformer2_ctc, wenet_ctc,
nemo_ctc) and optionally an offline ``second_pass`` model (e.g. SenseVoice) that re-decodes each
finished utterance for a better final transcript. Files are checked and the model is test-loaded
in a child process before this process loads it (a wrong file would kill the server).

One recognizer is shared by all sessions; each utterance gets its own sherpa stream, so no pool
is needed. Phrases (grammar mode) are ignored: sherpa models recognise free text.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any, Final

import numpy as np

from protocol.audio import Pcm
from server.config import AsrSettings
from server.providers.asr.sherpa_spec import LoadSpec, offline_spec, online_spec, probe
from server.providers.base import AsrCapabilities, ProviderUnavailable, Transcript

logger = logging.getLogger(__name__)

SAMPLE_RATE_HZ: Final = 16000
TAIL_PADDING_S: Final = 0.3
"""Silence fed at the end so the model emits its last tokens."""
MAX_SECOND_PASS_S: Final = 60.0
"""Longer utterances keep the first-pass result (the audio is not buffered past this)."""


class SherpaOnnxStream:
    """One utterance. ``accept``/``finish`` block (decoding): run them in the executor."""

    def __init__(self, provider: SherpaOnnxAsr) -> None:
        self._provider = provider
        self._stream: Any = provider.online.create_stream()
        self._keep_audio = provider.offline is not None
        self._audio: list[np.ndarray] = []
        self._audio_samples = 0
        self._last = ""
        self._final: Transcript | None = None
        self._lock = threading.Lock()

    def accept(self, pcm: Pcm) -> Transcript | None:
        with self._lock:
            if self._final is not None or self._stream is None:
                raise RuntimeError("ASR stream already finished")
            samples = np.asarray(pcm, dtype=np.int16).astype(np.float32) / 32768.0
            if samples.size == 0:
                return None
            self._buffer(samples)
            self._stream.accept_waveform(SAMPLE_RATE_HZ, samples)
            text = self._decode()
            if text == self._last:
                return None
            self._last = text
            return Transcript(text, is_final=False)

    def finish(self) -> Transcript:
        with self._lock:
            if self._final is not None:
                return self._final
            if self._stream is None:
                raise RuntimeError("ASR stream is closed")
            padding = np.zeros(int(TAIL_PADDING_S * SAMPLE_RATE_HZ), dtype=np.float32)
            self._stream.accept_waveform(SAMPLE_RATE_HZ, padding)
            self._stream.input_finished()
            text = self._decode()
            if self._keep_audio and self._audio:
                text = self._second_pass(np.concatenate(self._audio), fallback=text)
            self._final = Transcript(text, is_final=True)
            self._stream, self._audio = None, []
            return self._final

    def close(self) -> None:
        with self._lock:
            self._stream, self._audio = None, []

    def _buffer(self, samples: np.ndarray) -> None:
        if not self._keep_audio:
            return
        self._audio_samples += samples.size
        if self._audio_samples > MAX_SECOND_PASS_S * SAMPLE_RATE_HZ:
            logger.info("utterance longer than %.0f s: no second pass", MAX_SECOND_PASS_S)
            self._keep_audio, self._audio = False, []
        else:
            self._audio.append(samples)

    def _decode(self) -> str:
        online = self._provider.online
        while online.is_ready(self._stream):
            online.decode_stream(self._stream)
        return " ".join(str(online.get_result(self._stream)).split())

    def _second_pass(self, audio: np.ndarray, *, fallback: str) -> str:
        offline = self._provider.offline
        try:
            stream = offline.create_stream()
            stream.accept_waveform(SAMPLE_RATE_HZ, audio)
            offline.decode_stream(stream)
            text = " ".join(str(stream.result.text).split())
        except Exception:
            logger.exception("second-pass ASR failed; keeping the streaming result")
            return fallback
        return text or fallback


class SherpaOnnxAsr:
    """The provider (registry name ``sherpa``); thread-safe, shared by all sessions."""

    name = "sherpa"
    sample_rate_hz = SAMPLE_RATE_HZ
    capabilities = AsrCapabilities(grammar=False, free_text=True)

    def __init__(self, settings: AsrSettings, *, check_in_child: bool = True) -> None:
        cfg = settings.sherpa
        specs: list[LoadSpec] = [online_spec(cfg)]
        if cfg.second_pass:
            specs.append(offline_spec(cfg.second_pass, cfg.num_threads))
        try:
            import sherpa_onnx  # noqa: F401
        except ImportError as exc:
            raise ProviderUnavailable(f"sherpa-onnx is not installed ({exc})") from exc
        if check_in_child:
            probe(specs)
        try:
            self.online: Any = specs[0].load()
            self.offline: Any = specs[1].load() if len(specs) > 1 else None
        except (AssertionError, RuntimeError, ValueError, TypeError) as exc:
            raise ProviderUnavailable(f"sherpa-onnx ASR failed to load: {exc}") from exc
        self.kind = cfg.kind
        logger.info(
            "sherpa-onnx ASR ready: %s model in %s%s",
            cfg.kind,
            cfg.model_dir,
            f", second pass {cfg.second_pass.get('kind')}" if cfg.second_pass else "",
        )

    def create_stream(self, phrases: Sequence[str] | None = None) -> SherpaOnnxStream:
        """A stream for one utterance (phrases are ignored: free text). Cheap, non-blocking."""
        return SherpaOnnxStream(self)


def create(settings: AsrSettings) -> SherpaOnnxAsr:
    return SherpaOnnxAsr(settings)
