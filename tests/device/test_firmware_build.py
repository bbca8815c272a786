"""The simulated firmware version decides the hello, the OTA system info and the User-Agent
together (protocol.md §0): no combination a real board would never send (issue 22)."""

from __future__ import annotations

import json
from pathlib import Path

from device.app import Device, DeviceOptions
from device.ota import request_headers
from device.sysinfo import system_info

AUDIO = '"audio_params":{"format":"opus","sample_rate":16000,"channels":1,"frame_duration":60}}'


async def build(**kw: object) -> Device:
    return await Device.create(DeviceOptions(ws_url="ws://127.0.0.1:1/", **kw))  # type: ignore[arg-type]


async def test_legacy_iot_board_is_a_1_7_build_everywhere() -> None:
    device = await build(legacy_iot=True)
    ident = device.identity
    assert ident.firmware_version == "1.7.7"
    assert request_headers(ident)["User-Agent"] == "bread-compact-wifi/1.7.7"
    assert system_info(ident)["application"]["version"] == "1.7.7"
    # no features.mcp (legacy IoT instead) and no features.glyph_push (a 2.4.x field)
    hello = device.controller.channel.hello_text()
    assert hello == '{"type":"hello","version":1,"features":{},"transport":"websocket",' + AUDIO
    assert device.controller.mcp is None and device.controller.legacy_iot is not None


async def test_default_board_is_a_2_4_2_build_with_mcp_and_glyph_field() -> None:
    device = await build()
    assert device.identity.user_agent == "bread-compact-wifi/2.4.2"
    hello = json.loads(device.controller.channel.hello_text())
    assert hello["features"] == {"mcp": True, "glyph_push": False} and "text_font" not in hello
    glyphs = json.loads((await build(glyph_push=True)).controller.channel.hello_text())
    assert glyphs["features"]["glyph_push"] is True and glyphs["text_font"]["bundle"] == "noto-v1"


async def test_an_older_mcp_build_has_no_glyph_push_key() -> None:
    hello = json.loads((await build(firmware="1.8.0")).controller.channel.hello_text())
    assert hello["features"] == {"mcp": True}


async def test_the_version_of_this_run_replaces_the_one_in_the_state_file(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    first = await build(state_file=state)
    first.store.save(first.identity)
    again = await build(state_file=state, legacy_iot=True)
    assert again.identity.mac == first.identity.mac  # same board ...
    assert again.identity.firmware_version == "1.7.7"  # ... flashed with the build simulated now
