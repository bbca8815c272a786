"""``xiaozhi-transcribe`` against a real server: a WAV file through each of the three protocols."""

from __future__ import annotations

import json
import time
import wave
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio

from clients.cli import _parser, _run
from protocol.audio import Pcm
from server.app import Providers, Server
from server.transcribe.jwt_auth import encode_hs256
from tests.e2e.conftest import providers, running_server, speech  # noqa: F401 (fixtures)

pytestmark = pytest.mark.asyncio(loop_scope="session")
KEY = "cli-test-key"


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def server(
    providers: Providers,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Server]:
    transcribe: dict[str, Any] = {
        "jwt_keys": [KEY],
        "phrases": ["turn on the kitchen lamp", "what time is it"],
        "recordings": {"enabled": True, "dir": str(tmp_path_factory.mktemp("rec"))},
    }
    async with running_server(
        providers, tmp_path_factory.mktemp("cli"), transcribe=transcribe
    ) as s:
        yield s


@pytest.fixture
def wav(tmp_path: Path, speech: Callable[[str, str], Pcm]) -> Path:  # noqa: F811
    pcm = np.concatenate(
        [
            np.zeros(4800, np.int16),
            speech("turn on the kitchen lamp", "flite"),
            np.zeros(12800, np.int16),
        ]
    )
    path = tmp_path / "speech.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm.tobytes())
    return path


@pytest.mark.parametrize("protocol", ["sherpa", "sequenced"])
async def test_cli_transcribes_a_wav(server: Server, wav: Path, protocol: str) -> None:
    token = encode_hs256({"sub": "cli", "exp": int(time.time() + 600)}, KEY)
    args = _parser().parse_args(
        [protocol, str(wav), "--port", str(server.ws_port), "--pace", "0", "--token", token]
    )
    out = await _run(args)
    assert out["text"] == "turn on the kitchen lamp"


async def test_cli_uploads_a_file(server: Server, wav: Path) -> None:
    token = encode_hs256({"sub": "cli", "exp": int(time.time() + 600)}, KEY)
    args = _parser().parse_args(
        ["upload", str(wav), "--port", str(server.ws_port), "--token", token, "--device-id", "d"]
    )
    size = len(wav.read_bytes())  # noqa: ASYNC240 - a small local file
    out = await _run(args)
    assert out["done"]["bytes"] == size
    assert json.dumps(out)
