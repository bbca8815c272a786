"""sherpa-onnx OfflineTts with a tiny VITS model built in the test."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config import TtsSettings
from server.providers.base import ProviderError, ProviderUnavailable
from server.providers.registry import TTS
from server.providers.tts.sherpa import SherpaOnnxTts, find_model_files
from tests.server.providers.tts.tiny_vits import SAMPLE_RATE, SAMPLES_PER_TOKEN, write_tiny_vits


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_vits(tmp_path_factory.mktemp("tiny_vits"))


async def test_vits_generates_one_tone_per_token(model_dir: Path) -> None:
    tts = TTS.create("sherpa-onnx", TtsSettings(sherpa_model_dir=model_dir))
    audio = await tts.synthesize("hello")
    assert audio.sample_rate_hz == SAMPLE_RATE
    assert len(audio.pcm) == 4 * SAMPLES_PER_TOKEN  # h e l o
    assert int(abs(audio.pcm).max()) > 5000
    two = await tts.synthesize("hello world")
    assert len(two.pcm) == 10 * SAMPLES_PER_TOKEN  # 4 + space + 5


async def test_unknown_words_are_a_clear_error(model_dir: Path) -> None:
    tts = SherpaOnnxTts(TtsSettings(sherpa_model_dir=model_dir))
    with pytest.raises(ProviderError, match="no audio"):
        await tts.synthesize("zzz")


def test_detects_vits_layout(model_dir: Path) -> None:
    files = find_model_files(model_dir)
    assert files.kind == "vits"
    assert files.lexicon == model_dir / "lexicon.txt"


@pytest.mark.parametrize("missing", ["tokens.txt", "lexicon.txt", "model.onnx"])
def test_missing_file_is_reported_before_loading(
    model_dir: Path, tmp_path: Path, missing: str
) -> None:
    for name in ("model.onnx", "tokens.txt", "lexicon.txt"):
        if name != missing:
            (tmp_path / name).write_bytes((model_dir / name).read_bytes())
    with pytest.raises(ProviderUnavailable) as info:
        SherpaOnnxTts(TtsSettings(sherpa_model_dir=tmp_path))
    assert missing.split(".")[0] in str(info.value) or ".onnx" in str(info.value)


def test_no_model_dir_configured() -> None:
    with pytest.raises(ProviderUnavailable, match="sherpa_model_dir"):
        SherpaOnnxTts(TtsSettings())
