"""sherpa-onnx ASR for real, on tiny NeMo-CTC models built by the test (see tiny_models.py)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from server.config import AsrSettings, SherpaAsrSettings
from server.providers import registry
from server.providers.asr.sherpa import SherpaOnnxAsr
from server.providers.base import ProviderUnavailable, Transcript
from tests.server.providers.asr.tiny_models import bursts, offline_nemo_ctc, streaming_nemo_ctc


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sherpa")
    streaming_nemo_ctc(root / "online")
    offline_nemo_ctc(root / "offline")
    return {"online": root / "online", "offline": root / "offline"}


def settings_for(models: dict[str, Path], second_pass: bool = False, **kw: object) -> AsrSettings:
    sherpa = SherpaAsrSettings(kind="nemo_ctc", model_dir=models["online"], model="model.onnx")
    if second_pass:
        sherpa.second_pass = {
            "kind": "nemo_ctc",
            "model_dir": str(models["offline"]),
            "model": "model.onnx",
        }
    return AsrSettings(provider="sherpa", sherpa=sherpa.model_copy(update=kw))


@pytest.fixture(scope="module")
def asr(models: dict[str, Path]) -> SherpaOnnxAsr:
    provider = registry.ASR.create("sherpa", settings_for(models))
    assert isinstance(provider, SherpaOnnxAsr)
    return provider


def feed(asr: SherpaOnnxAsr, pcm: np.ndarray) -> tuple[list[Transcript], Transcript]:
    stream = asr.create_stream(["ignored phrase"])
    partials = [p for p in (stream.accept(pcm[i : i + 960]) for i in range(0, len(pcm), 960)) if p]
    final = stream.finish()
    stream.close()
    return partials, final


def test_streaming_partials_and_final(asr: SherpaOnnxAsr) -> None:
    partials, final = feed(asr, bursts("..#..#.."))
    assert partials == [Transcript("hello", False), Transcript("hello hello", False)]
    assert final == Transcript("hello hello", True)
    _, silent = feed(asr, bursts("...."))
    assert silent == Transcript("", True)


def test_second_pass_replaces_the_final(models: dict[str, Path]) -> None:
    asr = SherpaOnnxAsr(settings_for(models, second_pass=True))
    partials, final = feed(asr, bursts("..#..#..#."))
    assert partials[-1] == Transcript("hello hello hello", False)  # streaming model
    assert final == Transcript("world world world", True)  # offline model


def test_stream_lifecycle(asr: SherpaOnnxAsr) -> None:
    stream = asr.create_stream()
    assert stream.accept(np.zeros(0, dtype=np.int16)) is None
    assert stream.finish() == stream.finish() == Transcript("", True)
    with pytest.raises(RuntimeError, match="finished"):
        stream.accept(np.zeros(960, dtype=np.int16))
    other = asr.create_stream()
    other.close()
    other.close()
    with pytest.raises(RuntimeError):
        other.finish()


def test_concurrent_streams_share_one_recognizer(asr: SherpaOnnxAsr) -> None:
    patterns = ["..#..", "..#..#..", ".#.#.#."] * 2
    results: dict[int, str] = {}

    def run(i: int) -> None:
        results[i] = feed(asr, bursts(patterns[i]))[1].text

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(patterns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == {i: " ".join(["hello"] * p.count("#")) for i, p in enumerate(patterns)}


def test_missing_model_dir_and_files(models: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ProviderUnavailable, match=r"model_dir.*models download"):
        SherpaOnnxAsr(AsrSettings(provider="sherpa"))
    with pytest.raises(ProviderUnavailable, match="not found"):
        SherpaOnnxAsr(settings_for(models, model_dir=tmp_path / "nope"))
    with pytest.raises(ProviderUnavailable, match=r"model file .*missing\.onnx is missing"):
        SherpaOnnxAsr(settings_for(models, model="missing.onnx"))
    with pytest.raises(ProviderUnavailable, match="encoder"):
        SherpaOnnxAsr(settings_for(models, kind="transducer"))
    bad = settings_for(models, second_pass=True)
    assert bad.sherpa.second_pass is not None
    bad.sherpa.second_pass["kind"] = "nope"
    with pytest.raises(ProviderUnavailable, match=r"second_pass\.kind"):
        SherpaOnnxAsr(bad)


def test_wrong_model_is_refused_without_killing_the_server(
    models: dict[str, Path], tmp_path: Path
) -> None:
    # the offline model has the wrong inputs for a streaming recognizer
    wrong = settings_for(models, model=str(models["offline"] / "model.onnx"))
    with pytest.raises(ProviderUnavailable, match="does not load"):
        SherpaOnnxAsr(wrong)
    # tokens without a blank symbol make sherpa-onnx exit the process
    (tmp_path / "tokens.txt").write_text("<unk> 0\n▁hello 1\nx 2\n")
    no_blank = settings_for(models, tokens=str(tmp_path / "tokens.txt"))
    with pytest.raises(ProviderUnavailable, match="does not load"):
        SherpaOnnxAsr(no_blank)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not an onnx model" * 10)
    with pytest.raises(ProviderUnavailable, match="does not load"):
        SherpaOnnxAsr(settings_for(models, model=str(garbage)))
