"""Cross-connection batching on the sherpa-onnx path, for real: a tiny streaming NeMo-CTC model
(built by the test) behind the sherpa provider; four concurrent sherpa-protocol clients with
real speech are decoded in shared ``decode_streams`` calls and get the same text as unbatched."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from clients.sherpa_client import transcribe_sherpa
from protocol.audio import Pcm
from server.app import Providers
from server.config import AsrSettings, SherpaAsrSettings
from server.providers.asr.sherpa import SherpaOnnxAsr
from server.transcribe.batching import BatchedSherpaAsr
from tests.e2e.conftest import running_server
from tests.server.providers.asr.tiny_models import streaming_nemo_ctc

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
def sherpa_asr(tmp_path_factory: pytest.TempPathFactory) -> SherpaOnnxAsr:
    root = tmp_path_factory.mktemp("tiny")
    streaming_nemo_ctc(root)
    settings = AsrSettings(
        provider="sherpa",
        sherpa=SherpaAsrSettings(kind="nemo_ctc", model_dir=root, model="model.onnx"),
    )
    return SherpaOnnxAsr(settings)


async def run_clients(port: int, audio: Pcm, n: int) -> list[str]:
    results = await asyncio.gather(
        *(transcribe_sherpa(f"ws://127.0.0.1:{port}/", audio, pace=1.0) for _ in range(n))
    )
    return [r.text for r in results]


@pytest.mark.parametrize("batching", [True, False])
async def test_concurrent_streams_batched_and_unbatched_agree(
    providers: Providers,
    sherpa_asr: SherpaOnnxAsr,
    speech: Callable[[str, str], Pcm],
    tmp_path: Path,
    batching: bool,
) -> None:
    audio = np.concatenate(
        [
            np.zeros(4800, np.int16),
            speech("turn on the kitchen lamp", "flite"),
            np.zeros(8000, np.int16),
        ]
    )
    mine = Providers(
        vad=providers.vad, asr=sherpa_asr, dialogue=providers.dialogue, tts=providers.tts
    )
    transcribe = {"batching": batching, "max_active_streams": 8}
    async with running_server(mine, tmp_path, transcribe=transcribe) as server:
        texts = await run_clients(server.ws_port, audio, 4)
        setup = server.transcribe.batcher
        if batching:
            assert isinstance(server.transcribe.streams.asr, BatchedSherpaAsr)
            assert setup.batcher.batches > 0
            assert setup.batcher.mean_batch > 1.0, "streams of different connections batched"
        else:
            assert setup is None
    assert texts[0] and set(texts) == {texts[0]}
    assert set(texts[0].split()) == {"hello"}
