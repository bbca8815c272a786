"""The sherpa-onnx protocol at ``ws://HOST:PORT/`` over a real socket with real speech (flite,
pocketsphinx): float32 chunks, partials, ``Done``, final text; 503 over capacity."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from clients.sherpa_client import transcribe_sherpa
from protocol.audio import Pcm
from server.app import Providers, Server
from tests.e2e.conftest import running_server
from tests.timing import scaled

pytestmark = pytest.mark.asyncio(loop_scope="session")

PHRASES = ["turn on the kitchen lamp", "what time is it", "set the volume to thirty"]


def silence(seconds: float) -> Pcm:
    return np.zeros(int(16000 * seconds), dtype=np.int16)


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def server(
    providers: Providers, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Server]:
    transcribe: dict[str, Any] = {"phrases": PHRASES, "max_active_streams": 2}
    async with running_server(
        providers, tmp_path_factory.mktemp("sherpa"), transcribe=transcribe
    ) as srv:
        yield srv


async def test_sherpa_client_flow(server: Server, speech: Callable[[str, str], Pcm]) -> None:
    audio = np.concatenate(
        [
            silence(0.3),
            speech("turn on the kitchen lamp", "flite"),
            silence(1.0),
            speech("set the volume to thirty", "flite"),
            silence(0.2),
        ]
    )
    result = await transcribe_sherpa(f"ws://127.0.0.1:{server.ws_port}/", audio, pace=0)
    messages = [m for _, m in result.messages]
    assert all(set(m) <= {"text", "segment", "is_final"} for m in messages)
    partials = [m for m in messages if not m.get("is_final") and m["text"]]
    assert partials, "partial results while the audio streams"
    finals = [m for m in messages if m.get("is_final")]
    assert [f["segment"] for f in finals] == [0, 1]
    assert [f["text"] for f in finals] == ["turn on the kitchen lamp", "set the volume to thirty"]
    assert result.text == "turn on the kitchen lamp set the volume to thirty"
    assert result.got_done and result.close_code == 1000


async def test_sherpa_done_flushes_speech_without_trailing_silence(
    server: Server, speech: Callable[[str, str], Pcm]
) -> None:
    """The audio ends right after the last word: ``Done`` pads 0.3 s and the words get their
    final (the endpointer may end the segment inside that padding: a command no phrase
    continues ends ~120 ms after the voice; then only empty results of the next segment
    follow)."""
    audio = np.concatenate([silence(0.3), speech("set the volume to thirty", "flite")])
    result = await transcribe_sherpa(f"ws://127.0.0.1:{server.ws_port}/", audio, pace=0)
    messages = [m for _, m in result.messages]
    finals = [i for i, m in enumerate(messages) if m.get("is_final")]
    assert finals, messages
    final = messages[finals[0]]
    assert final["text"] == "set the volume to thirty" and final["segment"] == 0
    assert not any(m["text"] for m in messages[finals[0] + 1 :]), messages


async def test_sherpa_bad_input_closes_1003(server: Server) -> None:
    async with connect(f"ws://127.0.0.1:{server.ws_port}/") as ws:
        await ws.send(b"\x00\x01\x02")  # not a multiple of 4 bytes
        await ws.wait_closed()
        assert ws.close_code == 1003 and "float32" in (ws.close_reason or "")


async def test_sherpa_over_capacity_is_503(server: Server) -> None:
    url = f"ws://127.0.0.1:{server.ws_port}/"
    async with connect(url) as a, connect(url) as b:
        await a.send(np.zeros(1600, np.float32).tobytes())
        await b.send(np.zeros(1600, np.float32).tobytes())
        await a.recv()
        await b.recv()  # both streams are admitted and running
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, open_timeout=scaled(5)):
                pass
        assert refused.value.response.status_code == 503
