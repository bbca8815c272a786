"""A full voice turn through OpenAI-compatible services only: the server is configured with
``asr.provider=openai``, ``dialogue.provider=openai`` and ``tts.provider=openai``, all pointed at
``xiaozhi-bench mock-ai`` on loopback; a firmware-like board speaks real speech as Opus and gets
the ``stt``, the streamed answer's sentences and their audio, and a device tool is called."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from bench.mock_ai import Delay, MockAi, MockAiConfig
from iot.mcp_server import McpServer
from iot.things.board import demo_board
from protocol.audio import Pcm
from protocol.enums import ListenMode
from server.app import Server, build_providers
from tests.e2e.conftest import device, e2e_settings, is_msg
from tests.timing import scaled
from tests.wyoming.scripted_service import ScriptedService

pytestmark = pytest.mark.asyncio(loop_scope="module")

ANSWER = "The weather is fine today. Take a walk outside."


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def mock() -> AsyncIterator[MockAi]:
    config = MockAiConfig(
        asr=Delay(50), llm=Delay(50), tts=Delay(50), answer=ANSWER,
        transcripts=((float("inf"), "what is the weather like"),),
    )  # fmt: skip
    service = MockAi(config)
    await service.start()
    yield service
    await service.stop()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def server(mock: MockAi, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    tmp: Path = tmp_path_factory.mktemp("speech_services")
    url = mock.base_url
    settings = e2e_settings(
        tmp,
        asr={"provider": "openai", "openai": {"base_url": url, "model": "whisper-1"}},
        dialogue={"provider": "openai", "openai": {"base_url": url, "model": "mock"}},
        tts={"provider": "openai", "openai": {"base_url": url, "format": "pcm", "voice": "alloy"}},
    )
    providers = await asyncio.to_thread(build_providers, settings)
    srv = Server(settings, providers=providers)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()
        await providers.tts.close()  # type: ignore[attr-defined]
        providers.asr.close()  # type: ignore[attr-defined]


async def test_a_voice_turn_through_openai_asr_llm_and_tts(
    server: Server, mock: MockAi, speech: Callable[[str, str], Pcm]
) -> None:
    assert {k: v for k, v in server.health()["providers"].items() if k != "vad"} == {
        "asr": "openai", "dialogue": "openai", "tts": "openai"
    }  # fmt: skip
    async with device(server) as board:
        start = len(board.events)
        await board.listen_start(ListenMode.AUTO)
        await board.speak(speech("what time is it", "flite"))
        stt = await board.wait_for(is_msg("stt"), scaled(10), start=start)
        assert stt.data["text"] == "what is the weather like"
        await board.wait_for(is_msg("tts", "start"), scaled(10), start=start)
        stop = await board.wait_for(is_msg("tts", "stop"), scaled(20), start=start)
    sentences = [m["text"] for m in board.texts(start) if m.get("state") == "sentence_start"]
    assert sentences == ["The weather is fine today.", "Take a walk outside."]
    frames = [e for e in board.events[start:] if e.kind == "binary" and e.t <= stop.t]
    spoken_s = sum([len(await mock._voice_pcm(s)) for s in sentences]) / 24000
    assert len(frames) * 0.06 == pytest.approx(spoken_s + 0.12, abs=0.2)  # + lead-in silence
    assert mock.stats.transcriptions == 1 and mock.stats.speech == 2
    assert mock.stats.speech_formats == ["pcm", "pcm"]
    assert 0.8 < mock.stats.uploads_s[0] < 4.0  # the endpointed utterance, not the whole stream


async def test_the_llm_calls_a_device_tool_by_voice(
    server: Server, mock: MockAi, speech: Callable[[str, str], Pcm]
) -> None:
    mock.config = dataclasses.replace(
        mock.config, transcripts=((float("inf"), "turn on the kitchen lamp"),)
    )
    things = demo_board()
    async with device(server, wait_tools=False) as board:
        board.mcp = McpServer(things)
        await asyncio.wait_for(board.tools_listed.wait(), scaled(5))
        start = len(board.events)
        await board.listen_start(ListenMode.AUTO)
        await board.speak(speech("turn on the lamp", "flite"))
        stt = await board.wait_for(is_msg("stt"), scaled(10), start=start)
        assert stt.data["text"] == "turn on the kitchen lamp"
        await board.wait_for(is_msg("tts", "stop"), scaled(20), start=start)
    sentences = [m["text"] for m in board.texts(start) if m.get("state") == "sentence_start"]
    assert sentences == ["Done."]
    assert json.loads(things.device_status_json())["kitchen_lamp"]["power"] is True
    assert mock.stats.tool_calls >= 1


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def wyoming_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[Server, ScriptedService]]:
    """The server with ``asr.provider=wyoming`` and ``tts.provider=wyoming``, both pointed at a
    Wyoming service built from the ``wyoming`` library (tests/wyoming/scripted_service.py)."""
    service = ScriptedService()
    await service.start()
    settings = e2e_settings(
        tmp_path_factory.mktemp("speech_services_wyoming"),
        asr={"provider": "wyoming", "wyoming": {"port": service.port}},
        tts={"provider": "wyoming", "wyoming": {"port": service.port, "voice": "flite-slt"}},
    )
    srv = Server(settings, providers=await asyncio.to_thread(build_providers, settings))
    await srv.start()
    try:
        yield srv, service
    finally:
        await srv.stop()
        srv.providers.asr.close()  # type: ignore[union-attr]
        await service.stop()


async def test_a_voice_turn_through_wyoming_asr_and_tts(
    wyoming_server: tuple[Server, ScriptedService], speech: Callable[[str, str], Pcm]
) -> None:
    server, service = wyoming_server
    async with device(server) as board:
        start = len(board.events)
        await board.listen_start(ListenMode.AUTO)
        await board.speak(speech("what time is it", "flite"))
        stt = await board.wait_for(is_msg("stt"), scaled(10), start=start)
        await board.wait_for(is_msg("tts", "start"), scaled(10), start=start)
        stop = await board.wait_for(is_msg("tts", "stop"), scaled(20), start=start)
    heard_ms = int(stt.data["text"].split()[1])  # "heard N ms": the audio the service received
    assert 1000 < heard_ms < 4000
    assert service.log.transcribes == [{"language": "en"}]
    frames = [e for e in board.events[start:] if e.kind == "binary" and e.t <= stop.t]
    assert len(frames) > 10 and service.log.syntheses  # the answer, spoken by the service
    assert service.log.syntheses[0]["voice"] == {"name": "flite-slt"}
