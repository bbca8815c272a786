"""Spoken commands change the simulated things, over real sockets, real speech, real engines.

The simulator (device.app.Device) speaks flite speech as 60 ms Opus; the server runs silero VAD,
pocketsphinx, the local dialogue and flite TTS; the device's board applies the MCP tool call (or
the legacy IoT command) and the device hears a spoken confirmation.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from rich.console import Console

from demo import board_of, run_demo
from device.app import Device, DeviceOptions
from device.audio.sources import synthesize
from device.scenario import wait_until
from protocol.enums import DeviceState
from server.app import Providers, Server
from tests.e2e.conftest import running_server

pytestmark = pytest.mark.asyncio(loop_scope="session")

# (spoken command, thing, property, expected value, word the confirmation must contain)
COMMANDS: list[tuple[str, str, str, Any, str]] = [
    ("set the volume to thirty", "audio_speaker", "volume", 30, "30"),
    ("mute the speaker", "audio_speaker", "muted", True, "mute"),
    ("set the screen brightness to fifty", "screen", "brightness", 50, "50"),
    ("switch to dark theme", "screen", "theme", "dark", "dark"),
    ("turn on the kitchen lamp", "kitchen_lamp", "power", True, "on"),
    ("turn off the kitchen lamp", "kitchen_lamp", "power", False, "off"),
    ("set the bedroom lamp brightness to forty", "bedroom_lamp", "brightness", 40, "40"),
    ("set the kitchen lamp color to blue", "kitchen_lamp", "color", "blue", "blue"),
    ("set the thermostat to twenty one degrees", "thermostat", "target_temperature", 21, "21"),
    ("set the thermostat mode to cool", "thermostat", "mode", "cool", "cool"),
    ("open the curtain", "curtain", "position", 100, "open"),
    ("set the curtain to fifty percent", "curtain", "position", 50, "50"),
]
TOOL_TIMEOUT_S = 2.0
SORRY = ("sorry", "couldn't", "could not", "can't", "failed")


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def server(
    providers: Providers, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Server]:
    async with running_server(
        providers,
        tmp_path_factory.mktemp("iot_voice"),
        dialogue={"tool_call_timeout_s": TOOL_TIMEOUT_S},
    ) as srv:
        yield srv


async def start_device(server: Server, tmp: Path, *, legacy: bool) -> Device:
    options = DeviceOptions(
        state_file=tmp / "device.json",
        ws_url=f"ws://127.0.0.1:{server.ws_port}/xiaozhi/v1/",
        legacy_iot=legacy,
        realtime_playback=False,
    )
    dev = await Device.create(options)
    await dev.boot()
    return dev


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def devices(
    server: Server, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, Device]]:
    """One MCP board and one legacy-IoT board, talking to the server at the same time."""
    made: dict[str, Device] = {}
    try:
        for mode in ("mcp", "legacy"):
            tmp = tmp_path_factory.mktemp(mode)
            made[mode] = await start_device(server, tmp, legacy=mode == "legacy")
        yield made
    finally:
        for d in made.values():
            await d.close()


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def mcp_dev(
    server: Server, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Device]:
    """MCP mode only: legacy IoT commands (§8) have no reply, so a device failure is unknowable."""
    d = await start_device(server, tmp_path_factory.mktemp("mcp_dev"), legacy=False)
    try:
        yield d
    finally:
        await d.close()


async def say(dev: Device, text: str) -> tuple[str | None, list[str], bool]:
    """Speak one turn in auto mode → (stt text, sentence_start texts, audio after tts start)."""
    ctl = dev.controller
    utt = await synthesize(text)
    if ctl.state == DeviceState.IDLE:
        await ctl.click()
    await wait_until(lambda: ctl.mic_open, 15, "the mic to open")
    turn = ctl.turn  # the listening turn; the next listen start appends a new one
    ctl.source.play(utt)  # type: ignore[union-attr]
    await wait_until(lambda: turn.tts_stop is not None, 30, f"the reply to {text!r}")
    return turn.stt_text, list(turn.sentences), turn.first_audio is not None


@pytest.mark.parametrize(("text", "thing", "prop", "value", "word"), COMMANDS)
async def test_spoken_command_changes_thing(
    devices: dict[str, Device], text: str, thing: str, prop: str, value: Any, word: str
) -> None:
    """Both boards (MCP and legacy IoT) say the command at once; each thing changes as asked."""
    replies = await asyncio.gather(*(say(d, text) for d in devices.values()))
    for (mode, dev), (stt, sentences, audio) in zip(devices.items(), replies, strict=True):
        assert stt == text, mode
        assert board_of(dev).status()[thing][prop] == value, mode
        assert any(word in s.lower() for s in sentences), (mode, sentences)
        assert audio, mode


@pytest.mark.parametrize(
    ("fault", "tool", "text"),
    [
        ("fails", "self.curtain.close", "close the curtain"),
        ("times out", "self.bedroom_lamp.turn_on", "turn on the bedroom lamp"),
    ],
)
async def test_tool_fault_is_spoken(mcp_dev: Device, fault: str, tool: str, text: str) -> None:
    board = board_of(mcp_dev)
    if fault == "fails":
        board.inject_failure(tool, "motor jammed")
    else:  # the device answers after the server's tool-call timeout
        board.inject_delay(tool, TOOL_TIMEOUT_S + 3.0)
    try:
        stt, sentences, audio = await say(mcp_dev, text)
    finally:
        board.clear_injections()
    assert stt == text
    assert any(w in s.lower() for s in sentences for w in SORRY), sentences
    assert audio


async def test_demo_prints_turns_and_states() -> None:
    console = Console(record=True, width=120, force_terminal=False)
    code = await run_demo(["turn on the kitchen lamp", "what time is it"], console=console)
    out = console.export_text()
    assert code == 0, out
    assert "user said: turn on the kitchen lamp" in out
    assert "assistant said:" in out
    assert "power=True" in out  # the kitchen lamp row after the first turn
    assert "demo finished" in out
