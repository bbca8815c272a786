"""``xiaozhi-bench mock-ai``: the scripted OpenAI-compatible service answers like the real API
(streamed chat with tool calls, transcripts by audio length, bad requests get HTTP 400 with a
message) and keeps its configured latency."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio

from bench.mock_ai import (
    Delay,
    MockAi,
    MockAiConfig,
    build_parser,
    config_from_args,
    pick_tool,
    pick_transcript,
    tool_arguments,
)
from server.providers.asr.openai import wav_bytes
from tests.wyoming.scripted_service import tone

TOOLS = [
    {"type": "function", "function": {"name": "self_living_room_lamp_turn_on", "parameters": {}}},
    {"type": "function", "function": {"name": "self_kitchen_lamp_turn_on", "parameters": {}}},
    {
        "type": "function",
        "function": {
            "name": "self_audio_speaker_set_volume",
            "parameters": {
                "type": "object",
                "properties": {"volume": {"type": "integer"}},
                "required": ["volume"],
            },
        },
    },
]


@pytest_asyncio.fixture
async def mock() -> AsyncIterator[MockAi]:
    service = MockAi(MockAiConfig(asr=Delay(0), llm=Delay(120), tts=Delay(0), token_interval_ms=0))
    await service.start()
    yield service
    await service.stop()


def test_transcript_and_tool_choice() -> None:
    script = ((1.0, "short"), (float("inf"), "long"))
    assert [pick_transcript(s, script) for s in (0.5, 1.0, 7.0)] == ["short", "short", "long"]
    assert pick_tool("turn on the kitchen lamp", TOOLS)["name"] == "self_kitchen_lamp_turn_on"
    assert pick_tool("what time is it", TOOLS) is None
    volume = pick_tool("set the speaker volume to 30", TOOLS)
    assert volume is not None and tool_arguments(volume, "set the volume to 30") == {"volume": 30}


def test_command_line_config() -> None:
    args = build_parser().parse_args(
        [
            "--asr-ms",
            "10",
            "--llm-jitter-ms",
            "5",
            "--transcript",
            "1.5=hello",
            "--transcript",
            "inf=bye",
        ]
    )
    config = config_from_args(args)
    assert config.asr == Delay(10, 0) and config.llm == Delay(300, 5)
    assert config.transcripts == ((1.5, "hello"), (float("inf"), "bye"))
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--transcript", "no-equals-sign"])


async def test_streamed_chat_keeps_latency_and_calls_a_tool(mock: MockAi) -> None:
    body = {
        "model": "mock",
        "stream": True,
        "tools": TOOLS,
        "messages": [{"role": "user", "content": "turn on the kitchen lamp"}],
    }
    async with aiohttp.ClientSession() as http:
        start = time.monotonic()
        async with http.post(f"{mock.base_url}/chat/completions", json=body) as resp:
            first = await resp.content.readline()
            waited = time.monotonic() - start
            lines = [first, *[line async for line in resp.content]]
    chunks = [json.loads(x[5:]) for x in lines if x.startswith(b"data: {")]
    calls = [c for ch in chunks for c in ch["choices"][0]["delta"].get("tool_calls", [])]
    assert waited >= 0.11
    assert calls[0]["function"]["name"] == "self_kitchen_lamp_turn_on"
    assert lines[-2].strip() == b"data: [DONE]" or b"[DONE]" in b"".join(lines)
    body["messages"] += [{"role": "tool", "tool_call_id": "call_1", "content": "true"}]
    body["stream"] = False
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{mock.base_url}/chat/completions", json=body) as resp,
    ):
        answer = await resp.json()
    assert answer["choices"][0]["message"]["content"] == "Done."


async def test_transcription_formats_and_bad_requests(mock: MockAi) -> None:
    async with aiohttp.ClientSession() as http:
        form = aiohttp.FormData()
        form.add_field("file", wav_bytes(tone(0.5)), filename="a.wav", content_type="audio/wav")
        form.add_field("model", "whisper-1")
        form.add_field("response_format", "verbose_json")
        async with http.post(f"{mock.base_url}/audio/transcriptions", data=form) as resp:
            answer = await resp.json()
        assert answer == {"text": "turn on the lamp", "language": "en", "duration": 0.5}
        async with http.post(f"{mock.base_url}/audio/transcriptions", data=b"x") as resp:
            assert resp.status == 400
        bad_format = {"input": "hi", "response_format": "flac"}
        async with http.post(f"{mock.base_url}/audio/speech", json=bad_format) as resp:
            assert resp.status == 400
            assert "response_format" in (await resp.json())["error"]["message"]
        async with http.post(f"{mock.base_url}/chat/completions", data=b"{") as resp:
            assert resp.status == 400
