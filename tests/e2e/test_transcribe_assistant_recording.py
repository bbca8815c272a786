"""An opted-in assistant session is recorded: the board's uplink and the server's downlink as
Ogg Opus (the packets as sent), with the user's and the assistant's words and times."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from protocol.audio import Pcm
from protocol.enums import ListenMode
from protocol.opus import OpusDecoder
from server.app import Providers, Server
from server.recordings.ogg_opus import read_packets
from server.recordings.store import RecordingStore
from tests.e2e.conftest import device, is_msg, running_server
from tests.transcribe.waiting import eventually

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def server(
    providers: Providers, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Server]:
    rec: dict[str, Any] = {
        "enabled": True,
        "dir": str(tmp_path_factory.mktemp("recordings")),
        "endpoints": ["assistant"],
        "devices": ["a0:b7:65:00:00:01"],
    }
    async with running_server(
        providers, tmp_path_factory.mktemp("asr"), transcribe={"recordings": rec}
    ) as srv:
        yield srv


def store(server: Server) -> RecordingStore:
    return RecordingStore(server.settings.transcribe.recordings.dir)


@pytest.mark.parametrize("version", [1, 3])
async def test_opted_in_session_is_recorded_both_ways(
    server: Server, speech: Callable[[str, str], Pcm], version: int
) -> None:
    device_id = "a0:b7:65:00:00:01"
    before = {r.id for r in store(server).all()}
    async with device(server, version=version, device_id=device_id) as board:
        await board.listen_start(ListenMode.AUTO)
        await board.speak(speech("turn on the kitchen lamp", "flite"))
        started = lambda: any(is_msg("tts", "start")(e) for e in board.events)  # noqa: E731
        await board.stream_silence(started, max_s=8)
        await board.wait_for(is_msg("tts", "stop"), 20)
    new = [r for r in store(server).all() if r.id not in before]
    assert len(new) == 1 and new[0].endpoint == "assistant" and new[0].device_id == device_id
    folder: Path = new[0].folder
    assert await eventually(lambda: json.loads((folder / "meta.json").read_text()).get("complete"))
    up, _ = read_packets(folder / "uplink.opus")
    down, _ = read_packets(folder / "downlink.opus")
    assert len(up) > 20 and len(down) > 5
    decoder = OpusDecoder(16000, 60)
    assert all(len(decoder.decode(p)) == 960 for p in up[:5])
    lines = [json.loads(x) for x in (folder / "transcript.jsonl").read_text().splitlines()]
    user = [x for x in lines if x["role"] == "user"]
    assistant = [x for x in lines if x["role"] == "assistant"]
    assert user and user[0]["text"] == "turn on the kitchen lamp"
    assert assistant and assistant[0]["t_ms"] >= user[0]["t_ms"]


async def test_other_devices_are_not_recorded(server: Server) -> None:
    before = len(list(store(server).all()))
    async with device(server, device_id="a0:b7:65:00:00:02"):
        pass
    assert len(list(store(server).all())) == before
