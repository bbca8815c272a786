"""The simulator against the real server (real VAD/ASR/dialogue/TTS, OTA, MCP) on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from device.app import Device, DeviceOptions
from device.audio.sources import synthesize
from device.events import DeviceEvent, SttReceived, ThingChanged, TurnEnded
from device.scenario import Script, run_script
from server.app import Server
from server.config import load_settings

pytestmark = pytest.mark.e2e


async def test_turn_on_the_lamp_through_the_real_server(tmp_path: Path) -> None:
    settings = load_settings(
        websocket={"host": "127.0.0.1", "port": 0},
        ota={"host": "127.0.0.1", "port": 0, "db_path": tmp_path / "devices.sqlite3"},
    )
    server = Server(settings)
    await server.start()
    events: list[DeviceEvent] = []
    try:
        opts = DeviceOptions(
            ota_url=f"http://127.0.0.1:{server.http_port}/xiaozhi/ota/",
            state_file=tmp_path / "state.json",
        )
        device = await Device.create(opts, events.append)
        try:
            await device.boot()
            # The command comes first: like a real board, the device sends `listen start` right
            # after the hello, before the server's MCP tools/list has finished, and the server
            # must still recognise it with the full command grammar.
            utts = [await synthesize("turn on the lamp"), await synthesize("what time is it")]
            await run_script(device.controller, Script(utts, think_s=0.3, turn_timeout_s=20))
        finally:
            await device.close()
    finally:
        await server.stop()
    stts = [e.text for e in events if isinstance(e, SttReceived)]
    assert stts == ["turn on the lamp", "what time is it"], events
    assert ThingChanged("living_room_lamp", "power", True) in events
    turns = [e for e in events if isinstance(e, TurnEnded)]
    assert len(turns) == 2
    assert all(t.first_audio_ms is not None and t.stale_frames == 0 for t in turns)
    assert device.identity.websocket["url"] == f"ws://127.0.0.1:{server.ws_port}/xiaozhi/v1/"
