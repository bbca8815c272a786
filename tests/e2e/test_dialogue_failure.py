"""A failing or stalling OpenAI-compatible endpoint never hangs a session: the board always gets
a spoken answer (an apology) framed by ``tts start``/``tts stop``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web

from protocol.audio import Pcm
from protocol.enums import ListenMode
from server.app import Providers, Server
from server.config import load_settings
from server.providers import registry
from tests.e2e.conftest import device, is_msg, running_server

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def stub() -> AsyncIterator[tuple[str, dict[str, str]]]:
    """A local chat-completions endpoint whose behaviour the test picks: ``mode["how"]``."""
    mode = {"how": "500"}
    release = asyncio.Event()

    async def chat(request: web.Request) -> web.StreamResponse:
        await request.read()
        if mode["how"] == "500":
            return web.json_response({"error": {"message": "overloaded"}}, status=500)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        if mode["how"] == "stall":
            await release.wait()  # never a token (until the stub shuts down)
        else:  # "drop": one token, then the connection dies mid-stream
            await response.write(b'data: {"choices":[{"delta":{"content":"Well"}}]}\n\n')
            request.transport.close()  # type: ignore[union-attr]
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/v1", mode
    finally:
        release.set()
        await runner.cleanup()


@pytest.mark.parametrize("how", ["500", "stall", "drop"])
async def test_broken_llm_endpoint_still_ends_with_a_spoken_answer(
    providers: Providers,
    tmp_path: Path,
    stub: tuple[str, dict[str, str]],
    speech: Callable[[str, str], Pcm],
    how: str,
) -> None:
    url, mode = stub
    mode["how"] = how
    openai = {"base_url": url, "timeout_s": 3.0, "first_token_timeout_s": 1.0}
    dialogue_settings = load_settings(dialogue={"provider": "openai", "openai": openai}).dialogue
    dialogue = registry.DIALOGUE.create("openai", dialogue_settings)
    mixed = Providers(providers.vad, providers.asr, dialogue, providers.tts)
    async with (
        running_server(mixed, tmp_path) as server,
        device(server) as board,
    ):
        assert isinstance(server, Server)
        await board.listen_start(ListenMode.AUTO)
        await board.speak(speech("what time is it", "flite"))
        stt = await board.wait_for(is_msg("stt"), 10)
        assert stt.data["text"], "free-text ASR heard nothing"
        stop = await board.wait_for(is_msg("tts", "stop"), 10)
        assert stop.t - stt.t < 8
        after_stt = board.events[board.events.index(stt) :]
        sentences = [e.data["text"] for e in after_stt if is_msg("tts", "sentence_start")(e)]
        assert sentences and all(s.strip() for s in sentences)
        assert any(e.kind == "binary" for e in after_stt)
        assert any(is_msg("llm")(e) for e in after_stt)
