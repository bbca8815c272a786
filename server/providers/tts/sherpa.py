"""sherpa-onnx ``OfflineTts``: VITS/Piper, Kokoro or Matcha models from a local directory.

The directory is validated before anything is loaded (a wrong file can kill the process inside
onnxruntime). Expected layouts (first match wins):

* Kokoro: ``model.onnx`` + ``voices.bin`` + ``tokens.txt`` (+ ``espeak-ng-data/``/``lexicon.txt``)
* Matcha: ``model-steps-*.onnx``/``acoustic_model.onnx`` + ``vocos*.onnx``/``hifigan*.onnx``
* VITS/Piper: ``model.onnx`` (or the only ``*.onnx``) + ``tokens.txt`` + ``lexicon.txt`` or
  ``espeak-ng-data/``
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from server.config import TtsSettings
from server.providers.base import ProviderError, ProviderUnavailable, SpeechAudio, TtsCapabilities
from server.providers.tts.process import check_text

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TtsModelFiles:
    kind: str  # "vits" | "kokoro" | "matcha"
    model: Path
    tokens: Path
    lexicon: Path | None
    data_dir: Path | None
    voices: Path | None = None
    vocoder: Path | None = None


def find_model_files(model_dir: Path | None) -> TtsModelFiles:
    """Locate and validate the files of a sherpa-onnx TTS model (ProviderUnavailable if wrong)."""
    if model_dir is None:
        raise ProviderUnavailable(
            "sherpa-onnx TTS needs tts.sherpa_model_dir (XIAOZHI_TTS__SHERPA_MODEL_DIR)"
        )
    if not model_dir.is_dir():
        raise ProviderUnavailable(f"sherpa-onnx TTS model directory not found: {model_dir}")
    tokens = model_dir / "tokens.txt"
    if not tokens.is_file():
        raise ProviderUnavailable(f"sherpa-onnx TTS model is missing {tokens}")
    lexicon = model_dir / "lexicon.txt"
    data_dir = model_dir / "espeak-ng-data"
    lex = lexicon if lexicon.is_file() else None
    data = data_dir if data_dir.is_dir() else None
    onnx_files = sorted(p for p in model_dir.glob("*.onnx") if p.is_file())
    vocoders = [p for p in onnx_files if p.name.startswith(("vocos", "hifigan"))]
    acoustic = [p for p in onnx_files if p not in vocoders]
    voices = model_dir / "voices.bin"
    if lex is None and data is None:
        raise ProviderUnavailable(
            f"sherpa-onnx TTS model in {model_dir} needs lexicon.txt or an espeak-ng-data/ folder"
        )
    preferred = model_dir / "model.onnx"
    model = preferred if preferred.is_file() else (acoustic[0] if len(acoustic) == 1 else None)
    if voices.is_file():
        if model is None:
            raise ProviderUnavailable(f"Kokoro model in {model_dir} needs model.onnx")
        return TtsModelFiles("kokoro", model, tokens, lex, data, voices=voices)
    if vocoders:
        if not acoustic:
            raise ProviderUnavailable(f"Matcha model in {model_dir} has no acoustic model .onnx")
        return TtsModelFiles("matcha", acoustic[0], tokens, lex, data, vocoder=vocoders[0])
    if model is None:
        raise ProviderUnavailable(
            f"sherpa-onnx TTS: expected model.onnx (or exactly one .onnx) in {model_dir}, "
            f"found {[p.name for p in onnx_files]}"
        )
    return TtsModelFiles("vits", model, tokens, lex, data)


def _build_config(files: TtsModelFiles, num_threads: int) -> Any:
    import sherpa_onnx

    lexicon = str(files.lexicon or "")
    data_dir = str(files.data_dir or "")
    model = sherpa_onnx.OfflineTtsModelConfig()
    if files.kind == "kokoro":
        model.kokoro = sherpa_onnx.OfflineTtsKokoroModelConfig(
            model=str(files.model),
            voices=str(files.voices),
            tokens=str(files.tokens),
            lexicon=lexicon,
            data_dir=data_dir,
        )
    elif files.kind == "matcha":
        model.matcha = sherpa_onnx.OfflineTtsMatchaModelConfig(
            acoustic_model=str(files.model),
            vocoder=str(files.vocoder),
            lexicon=lexicon,
            tokens=str(files.tokens),
            data_dir=data_dir,
        )
    else:
        model.vits = sherpa_onnx.OfflineTtsVitsModelConfig(
            model=str(files.model), lexicon=lexicon, tokens=str(files.tokens), data_dir=data_dir
        )
    model.num_threads = num_threads
    model.provider = "cpu"
    config = sherpa_onnx.OfflineTtsConfig(model=model, max_num_sentences=1)
    if not config.validate():
        raise ProviderUnavailable(f"sherpa-onnx rejected the TTS model config for {files.model}")
    return config


class SherpaOnnxTts:
    """Local neural TTS; the model loads lazily on first use, ``generate`` runs in a thread."""

    name = "sherpa-onnx"
    capabilities = TtsCapabilities(
        languages=frozenset({"en", "zh"}), sample_rate_hz=22050, loads_model=True
    )

    def __init__(self, settings: TtsSettings | None = None, *, num_threads: int = 1) -> None:
        settings = settings or TtsSettings()
        self.files = find_model_files(settings.sherpa_model_dir)
        try:
            import sherpa_onnx  # noqa: F401
        except ImportError as exc:
            raise ProviderUnavailable(
                "sherpa-onnx is not installed: pip install sherpa-onnx"
            ) from exc
        self.speed = settings.speed
        self.speaker_id = 0
        self._num_threads = num_threads
        self._tts: Any = None
        self._lock = asyncio.Lock()
        """One generate at a time: the engine is not re-entrant and the CPU is shared."""

    def _load(self) -> Any:
        import sherpa_onnx

        if self._tts is None:
            config = _build_config(self.files, self._num_threads)
            self._tts = sherpa_onnx.OfflineTts(config)
            log.info("loaded sherpa-onnx %s TTS from %s", self.files.kind, self.files.model)
        return self._tts

    def _generate(self, text: str) -> tuple[np.ndarray, int]:
        audio = self._load().generate(text, sid=self.speaker_id, speed=self.speed)
        samples = np.asarray(audio.samples, dtype=np.float32)
        pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16)
        return pcm, int(audio.sample_rate)

    async def synthesize(self, text: str, *, language: str | None = None) -> SpeechAudio:
        """Speech at the model's sample rate; ProviderError if the model produced nothing."""
        clean = check_text(text)
        async with self._lock:
            pcm, rate = await asyncio.to_thread(self._generate, clean)
        if pcm.size == 0:
            raise ProviderError(
                f"sherpa-onnx produced no audio for {clean[:40]!r} (words not in the lexicon?)",
                code="tts-empty-output",
            )
        return SpeechAudio(pcm=pcm, sample_rate_hz=rate)
