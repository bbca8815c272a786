"""LLM down → the local dialogue answers what it can and ``/healthz`` says degraded; LLM back → ok.

Runs the server's composition root (HTTP side, WebSocket port, the dialogue built from the
settings) against :class:`FakeLlm` on loopback, which the test turns down and up again, and
against a dead port.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from iot.tools import ToolOutcome
from server.app import Providers, Server
from server.config import Settings, load_settings
from server.providers.base import DialogueContext, TextDelta
from server.providers.dialogue.fallback import OFFLINE_NOTICE, FallbackDialogue, build_dialogue
from server.providers.dialogue.local import LocalDialogue
from tests.server.fakes import ToneTts
from tests.timing import scaled

from .fake_llm import ANSWER, FakeLlm


def settings_for(base_url: str, tmp_path: Path) -> Settings:
    return load_settings(
        environ={},
        websocket={"host": "127.0.0.1", "port": 0},
        ota={"host": "127.0.0.1", "port": 0, "db_path": tmp_path / "devices.sqlite3"},
        dialogue={
            "provider": "openai",
            "llm_retry_after_s": 0,
            "openai": {"base_url": base_url, "first_token_timeout_s": scaled(3), "model": "fake"},
        },
    )


async def start_server(settings: Settings) -> Server:
    # no session is opened in these tests: VAD and ASR are never used
    providers = Providers(vad=None, asr=None, dialogue=build_dialogue(settings.dialogue),  # type: ignore[arg-type]
                          tts=ToneTts())  # fmt: skip
    server = Server(settings, providers=providers)
    await server.start()
    return server


@pytest.fixture
async def llm() -> AsyncIterator[FakeLlm]:
    fake = FakeLlm()
    await fake.up()
    try:
        yield fake
    finally:
        await fake.down()


async def ask(server: Server, text: str, device: str = "a0:b7:65:12:34:56") -> str:
    assert server.providers is not None
    context = DialogueContext(device_id=device)
    pieces = [
        e.text
        async for e in server.providers.dialogue.respond(text, context)
        if isinstance(e, TextDelta)
    ]
    return "".join(pieces)


async def healthz(server: Server) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{server.http_port}/healthz") as response,
    ):
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body


async def test_llm_down_then_back(llm: FakeLlm, tmp_path: Path) -> None:
    server = await start_server(settings_for(llm.base_url, tmp_path))
    try:
        assert isinstance(server.providers and server.providers.dialogue, FallbackDialogue)
        assert (await ask(server, "what time is it")).strip() == ANSWER
        assert (await healthz(server))["status"] == "ok"

        await llm.down()
        answer = await ask(server, "what time is it")
        assert answer.startswith(OFFLINE_NOTICE)
        assert "It is" in answer and "language model right now" not in answer
        health = await healthz(server)
        assert health["status"] == "degraded"
        assert "xiaozhi_degraded 1.0" in server.metrics.render().decode()
        assert health["dialogue"]["provider"] == "openai"
        assert health["dialogue"]["status"] == "degraded"
        assert "Connect" in health["dialogue"]["reason"]  # ClientConnectorError: refused
        assert health["dialogue"]["since"]
        again = await ask(server, "what time is it")
        assert "It is" in again and OFFLINE_NOTICE not in again  # said once per device
        assert OFFLINE_NOTICE in await ask(server, "hello", device="another")

        await llm.up()
        assert (await ask(server, "what time is it")).strip() == ANSWER
        health = await healthz(server)
        assert health["status"] == "ok" and health["dialogue"]["status"] == "ok"
        assert "xiaozhi_degraded 0.0" in server.metrics.render().decode()
        assert "Connect" in health["dialogue"]["last_error"]
    finally:
        await server.stop()


async def test_llm_http_500_degrades_too(llm: FakeLlm, tmp_path: Path) -> None:
    server = await start_server(settings_for(llm.base_url, tmp_path))
    try:
        llm.mode = "error"
        answer = await ask(server, "what can you do")
        assert answer.startswith(OFFLINE_NOTICE) and "I can tell you the time" in answer
        health = await healthz(server)
        assert health["status"] == "degraded" and "HTTP 500" in health["dialogue"]["reason"]
        llm.mode = "ok"
        assert (await ask(server, "what can you do")).strip() == ANSWER
        assert (await healthz(server))["status"] == "ok"
    finally:
        await server.stop()


async def test_llm_that_times_out_degrades_within_the_first_token_timeout(
    llm: FakeLlm, tmp_path: Path
) -> None:
    settings = settings_for(llm.base_url, tmp_path)
    openai = settings.dialogue.openai.model_copy(update={"first_token_timeout_s": scaled(0.5)})
    dialogue = settings.dialogue.model_copy(update={"openai": openai})
    server = await start_server(settings.model_copy(update={"dialogue": dialogue}))
    try:
        llm.mode = "stall"
        answer = await ask(server, "what time is it")
        assert answer.startswith(OFFLINE_NOTICE) and "It is" in answer
        health = await healthz(server)
        assert health["status"] == "degraded" and "Timeout" in health["dialogue"]["reason"]
    finally:
        llm.release()
        await server.stop()


def dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_dead_port_is_degraded_from_the_start_and_device_commands_work(
    tmp_path: Path,
) -> None:
    server = await start_server(settings_for(f"http://127.0.0.1:{dead_port()}/v1", tmp_path))
    try:
        health = await healthz(server)  # the start-up probe already knows
        assert health["status"] == "degraded"
        assert server.providers is not None
        calls: list[tuple[str, dict[str, Any]]] = []

        async def call_tool(name: str, arguments: dict[str, Any]) -> ToolOutcome:
            calls.append((name, arguments))
            return ToolOutcome(text="true", is_error=False)

        from iot.things.board import demo_board

        context = DialogueContext(
            tools=demo_board().mcp_tools(), call_tool=call_tool, device_id="d1"
        )
        events = server.providers.dialogue.respond("turn on the kitchen lamp", context)
        answer = "".join([e.text async for e in events if isinstance(e, TextDelta)])
        assert calls == [("self.kitchen_lamp.turn_on", {})]
        assert answer == OFFLINE_NOTICE + " The kitchen lamp is on."
    finally:
        await server.stop()


async def test_fallback_none_keeps_the_plain_llm_dialogue(tmp_path: Path) -> None:
    settings = settings_for("http://127.0.0.1:9/v1", tmp_path)
    plain = build_dialogue(settings.dialogue.model_copy(update={"fallback": "none"}))
    assert not isinstance(plain, FallbackDialogue) and plain.name == "openai"
    assert isinstance(build_dialogue(load_settings(environ={}).dialogue), LocalDialogue)


def test_health_retries_the_llm_only_after_the_retry_window() -> None:
    from server.providers.dialogue.fallback import DialogueHealth

    now = [100.0]
    health = DialogueHealth("openai", retry_after_s=30.0, clock=lambda: now[0], wall=lambda: 0.0)
    assert health.should_try() and not health.degraded
    assert health.failed("ClientConnectorError: refused") is True  # a new outage
    assert health.degraded and not health.should_try()
    now[0] += 29.9
    assert not health.should_try()
    now[0] += 0.1
    assert health.should_try()
    assert health.failed("again") is False and health.failures == 2  # the same outage
    assert health.report()["status"] == "degraded" and health.report()["reason"] == "again"
    assert health.succeeded() is True and health.should_try()
    assert health.report() == {
        "provider": "openai",
        "status": "ok",
        "last_error": "again",
        "last_error_at": "1970-01-01T00:00:00+00:00",
    }
    assert health.outages == 1
