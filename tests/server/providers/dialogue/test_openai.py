"""The OpenAI-compatible dialogue against a local aiohttp server speaking streaming SSE."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from protocol.enums import Emotion
from server.config import DialogueSettings, OpenAISettings
from server.providers.base import DialogueContext, EmotionChosen, TextDelta
from server.providers.dialogue.openai import APOLOGY, OpenAIDialogue
from server.providers.dialogue.openai_tools import ToolNames
from server.providers.registry import DIALOGUE
from tests.server.providers.dialogue.conftest import Device

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def chunk(delta: dict[str, Any]) -> bytes:
    body = {"id": "x", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]}
    return f"data: {json.dumps(body)}\n\n".encode()


async def sse(
    request: web.Request, pieces: list[bytes], pause_s: float = 0.0
) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    for piece in pieces:
        await resp.write(piece)
        if pause_s:
            await asyncio.sleep(pause_s)
    await resp.write(b"data: [DONE]\n\n")
    return resp


class FakeLlm:
    """Records request bodies; ``handler`` decides the answer."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.handler: Handler | None = None
        self.release = asyncio.Event()
        """Set at teardown so stalled handlers end at once."""

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        self.bodies.append(await request.json())
        assert self.handler is not None
        return await self.handler(request)


@pytest.fixture
async def llm() -> AsyncIterator[tuple[FakeLlm, str]]:
    fake = FakeLlm()
    app = web.Application()

    async def handle(request: web.Request) -> web.StreamResponse:
        return await fake(request)

    app.router.add_post("/v1/chat/completions", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield fake, f"http://127.0.0.1:{port}/v1"
    fake.release.set()
    await runner.cleanup()


def engine(base_url: str, **kw: Any) -> OpenAIDialogue:
    return OpenAIDialogue(DialogueSettings(openai=OpenAISettings(base_url=base_url, **kw)))


async def run(dialogue: OpenAIDialogue, text: str, ctx: DialogueContext) -> tuple[list[str], str]:
    events = [e async for e in dialogue.respond(text, ctx)]
    emotions = [e.emotion for e in events if isinstance(e, EmotionChosen)]
    return emotions, "".join(e.text for e in events if isinstance(e, TextDelta))


async def test_streams_tokens_as_they_arrive(llm: tuple[FakeLlm, str]) -> None:
    fake, url = llm
    words = ["Hello", " there", ", I am", " fine."]
    fake.handler = lambda r: sse(
        r, [chunk({"role": "assistant"}), *map(lambda w: chunk({"content": w}), words)], 0.05
    )
    dialogue = DIALOGUE.create("openai", DialogueSettings(openai=OpenAISettings(base_url=url)))
    ctx = DialogueContext()
    arrivals: list[tuple[float, str]] = []
    start = time.monotonic()
    async for event in dialogue.respond("how are you", ctx):
        if isinstance(event, TextDelta):
            arrivals.append((time.monotonic() - start, event.text))
    assert [t for _, t in arrivals] == words
    assert arrivals[-1][0] - arrivals[0][0] > 0.1  # streamed, not buffered until the end
    body = fake.bodies[0]
    assert body["stream"] is True
    assert body["messages"][0]["role"] == "system"
    assert body["messages"][-1] == {"role": "user", "content": "how are you"}
    assert "tools" not in body  # no device tools in this context
    assert ctx.history == [
        {"role": "user", "content": "how are you"},
        {"role": "assistant", "content": "Hello there, I am fine."},
    ]


async def test_tool_call_round_trip(llm: tuple[FakeLlm, str], device: Device) -> None:
    fake, url = llm

    async def answer(request: web.Request) -> web.StreamResponse:
        if len(fake.bodies) == 1:
            fn = ToolNames(device.board.mcp_tools()).to_function["self.audio_speaker.set_volume"]
            call = {"index": 0, "id": "call_1", "type": "function",
                    "function": {"name": fn, "arguments": ""}}  # fmt: skip
            return await sse(request, [
                chunk({"tool_calls": [call]}),
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"volu'}}]}),
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'me": 30}'}}]}),
            ])  # fmt: skip
        return await sse(request, [chunk({"content": "Volume is now 30."})])

    fake.handler = answer
    emotions, text = await run(engine(url), "set the volume to thirty", device.context())
    assert text == "Volume is now 30."
    assert device.calls == [("self.audio_speaker.set_volume", {"volume": 30})]
    assert device.board.status()["audio_speaker"]["volume"] == 30
    first, second = fake.bodies
    names = [t["function"]["name"] for t in first["tools"]]
    assert all(set(n) <= set("abcdefghijklmnopqrstuvwxyz0123456789_-") for n in names)
    volume = next(t for t in first["tools"] if "set_volume" in t["function"]["name"])
    params = volume["function"]["parameters"]
    assert params["properties"]["volume"] == {"type": "integer", "minimum": 0, "maximum": 100}
    assert params["required"] == ["volume"]
    assert second["messages"][-2]["tool_calls"][0]["id"] == "call_1"
    assert second["messages"][-1] == {"role": "tool", "tool_call_id": "call_1", "content": "true"}
    assert emotions == [Emotion.NEUTRAL]


async def test_tool_error_is_sent_back_to_the_model(
    llm: tuple[FakeLlm, str], device: Device
) -> None:
    fake, url = llm
    device.board.inject_failure("self.curtain.open", "motor jammed")

    async def answer(request: web.Request) -> web.StreamResponse:
        if len(fake.bodies) == 1:
            call = {
                "index": 0,
                "id": "c",
                "function": {"name": "self-curtain-open", "arguments": "{}"},
            }
            return await sse(request, [chunk({"tool_calls": [call]})])
        return await sse(request, [chunk({"content": "The curtain motor is jammed."})])

    fake.handler = answer
    _, text = await run(engine(url), "open the curtain", device.context())
    assert text == "The curtain motor is jammed."
    assert fake.bodies[1]["messages"][-1]["content"] == "Error: motor jammed"


async def test_http_error_gives_apology(llm: tuple[FakeLlm, str]) -> None:
    fake, url = llm

    async def fail(request: web.Request) -> web.StreamResponse:
        return web.Response(status=500, text="model crashed")

    fake.handler = fail
    ctx = DialogueContext()
    emotions, text = await run(engine(url), "hello", ctx)
    assert text == APOLOGY
    assert emotions[-1] == Emotion.SAD
    assert ctx.history == []


async def test_refused_connection_gives_apology() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    start = time.monotonic()
    _, text = await run(engine(f"http://127.0.0.1:{port}/v1"), "hello", DialogueContext())
    assert text == APOLOGY
    assert time.monotonic() - start < 5


async def test_bad_json_gives_apology(llm: tuple[FakeLlm, str]) -> None:
    fake, url = llm
    fake.handler = lambda r: sse(r, [b"data: {not json\n\n"])
    assert (await run(engine(url), "hello", DialogueContext()))[1] == APOLOGY


async def test_slow_endpoint_apologises_within_first_token_timeout(
    llm: tuple[FakeLlm, str],
) -> None:
    fake, url = llm

    async def slow(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await fake.release.wait()
        return resp

    fake.handler = slow
    start = time.monotonic()
    _, text = await run(engine(url, first_token_timeout_s=0.5), "hello", DialogueContext())
    assert text == APOLOGY
    assert time.monotonic() - start < 3


async def test_stall_after_first_tokens_is_cut_by_total_timeout(llm: tuple[FakeLlm, str]) -> None:
    fake, url = llm

    async def stall(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(chunk({"content": "Let me think."}))
        await fake.release.wait()
        return resp

    fake.handler = stall
    start = time.monotonic()
    _, text = await run(engine(url, timeout_s=1.0), "hello", DialogueContext())
    assert text.startswith("Let me think. Sorry")
    assert time.monotonic() - start < 4


async def test_history_is_bounded(llm: tuple[FakeLlm, str]) -> None:
    fake, url = llm
    fake.handler = lambda r: sse(r, [chunk({"content": "ok"})])
    dialogue = engine(url, max_history_turns=2)
    ctx = DialogueContext()
    for i in range(4):
        await run(dialogue, f"question {i}", ctx)
    assert len(ctx.history) == 4
    assert ctx.history[0]["content"] == "question 2"
    last = fake.bodies[-1]["messages"]
    assert [m["content"] for m in last if m["role"] == "user"] == [
        "question 1",
        "question 2",
        "question 3",
    ][-3:]


def test_tool_names_map_both_ways_without_collisions() -> None:
    from protocol.mcp import Tool

    tools = [Tool(name="self.a.b"), Tool(name="self-a-b"), Tool(name="self.a b!")]
    names = ToolNames(tools)
    assert len(set(names.to_function.values())) == 3
    for tool in tools:
        assert names.to_tool[names.to_function[tool.name]] == tool.name
    assert names.to_function["self.a.b"] == "self-a-b"
