"""Speculative answers over an in-memory channel: started on a stable command partial, heard only
when the final transcript is the same words; a discarded one sends nothing and calls no tool."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from iot.tools import ToolOutcome
from protocol.mcp import Tool
from server.config import load_settings
from server.metrics import ServerMetrics
from server.providers.base import (
    AsrCapabilities,
    DialogueContext,
    DialogueEvent,
    TextDelta,
    Transcript,
)
from server.session.connection import Connection, PeerInfo
from server.session.deps import SessionDeps
from tests.server.fakes import ANSWERS, ToneTts
from tests.server.session.test_connection import LoudVad, MemoryChannel, utterance_frames

LAMP = "turn on the lamp"


class ScriptedAsr:
    """Its partial is ``partial`` from the first audio on; its final is ``final``."""

    name = "scripted"
    sample_rate_hz = 16000
    capabilities = AsrCapabilities(grammar=True, free_text=False, partials=True, streaming=True)

    def __init__(self, partial: str, final: str) -> None:
        self.partial, self.final = partial, final

    def create_stream(self, phrases: Sequence[str] | None = None) -> ScriptedAsr:
        return self

    def accept(self, pcm: Any) -> Transcript | None:
        return Transcript(self.partial, is_final=False)

    def finish(self) -> Transcript:
        return Transcript(self.final, is_final=True, language="en")

    def close(self) -> None:
        pass


class ToolDialogue:
    """The fake answers, and "turn on the lamp" calls the lamp tool before answering."""

    name = "tool-fake"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def phrases(self, tools: Sequence[Tool]) -> list[str]:
        return sorted([*ANSWERS, LAMP])

    async def respond(
        self, utterance: str, context: DialogueContext
    ) -> AsyncIterator[DialogueEvent]:
        self.calls.append(utterance)
        if utterance == LAMP:
            assert context.call_tool is not None
            await context.call_tool("self.lamp.turn_on", {})
            yield TextDelta("The lamp is on.")
            return
        for word in ANSWERS.get(utterance, "I do not know.").split(" "):
            yield TextDelta(word + " ")


async def converse(partial: str, final: str) -> tuple[MemoryChannel, ToolDialogue, list[str]]:
    """One auto-mode utterance, paced like a board; returns what the device got, the dialogue's
    calls and the tool calls made on the device."""
    dialogue, tools_called = ToolDialogue(), []
    deps = SessionDeps(
        settings=load_settings(websocket={"hello_timeout_s": 2, "idle_timeout_s": 5}),
        vad=LoudVad(),
        asr=ScriptedAsr(partial, final),  # type: ignore[arg-type]
        dialogue=dialogue,  # type: ignore[arg-type]
        tts=ToneTts(ms_per_char=2),
        executor=ThreadPoolExecutor(2),
        metrics=ServerMetrics(),
    )
    channel = MemoryChannel()
    connection = Connection(channel, deps, PeerInfo())

    async def call_tool(name: str, arguments: dict[str, Any]) -> ToolOutcome:
        tools_called.append(name)
        return ToolOutcome("ok")

    connection._tools.call_tool = call_tool  # type: ignore[method-assign]
    task = asyncio.create_task(connection.run())
    await channel.open(listen="auto")
    for frame in utterance_frames(1):
        await channel.inbound.put(frame)
        await asyncio.sleep(0.02)  # the speculation gets time to run before the endpoint
    await channel.wait_text("stt")
    await channel.wait_tts_stop()
    await asyncio.sleep(0.2)  # anything late would show now
    await channel.inbound.put(None)
    await asyncio.wait_for(task, 5)
    return channel, dialogue, tools_called


def spoken(channel: MemoryChannel) -> list[str]:
    return [m["text"] for m in channel.texts() if m.get("state") == "sentence_start"]


@pytest.mark.parametrize("speculated", ["tell me a story", LAMP])
async def test_a_discarded_speculation_is_never_heard_and_calls_no_tool(speculated: str) -> None:
    channel, dialogue, tools = await converse(speculated, "what time is it")
    assert dialogue.calls == [speculated, "what time is it"], "the speculation did run"
    assert [m["text"] for m in channel.texts() if m["type"] == "stt"] == ["what time is it"]
    assert spoken(channel) == ["It is twelve o'clock."]
    states = [m["state"] for m in channel.texts() if m["type"] == "tts"]
    assert states == ["start", "sentence_start", "stop"]
    assert tools == []
    frames = sum(isinstance(m, bytes) for m in channel.sent)
    assert frames == 2 + -(-len("It is twelve o'clock.") * 2 // 60)  # that sentence's audio only


async def test_an_adopted_speculation_is_the_turn_and_is_not_asked_twice(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    channel, dialogue, tools = await converse("what time is it", "what time is it")
    assert dialogue.calls == ["what time is it"]
    assert spoken(channel) == ["It is twelve o'clock."]
    assert [m["state"] for m in channel.texts() if m["type"] == "tts"] == [
        "start", "sentence_start", "stop"
    ]  # fmt: skip
    assert any("adopts the answer" in r.getMessage() for r in caplog.records)
    assert tools == []


async def test_an_adopted_speculation_calls_its_tool_once_after_the_transcript() -> None:
    channel, dialogue, tools = await converse(LAMP, LAMP)
    assert dialogue.calls == [LAMP] and tools == ["self.lamp.turn_on"]
    assert spoken(channel) == ["The lamp is on."]
