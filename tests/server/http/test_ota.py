"""The OTA/config endpoint as a real board sees it (protocol.md §2.2–2.3, §9 items 1–3)."""

from __future__ import annotations

import time

import aiohttp
import pytest

from server.http.ota import local_timezone_offset_min

from .conftest import WS_PORT
from .firmware import CLIENT_ID, MAC, SERIAL, firmware_post, system_info_json

OTA = "/xiaozhi/ota/"


async def test_real_board_post_gets_websocket_config(server) -> None:
    async with server() as running:
        before = time.time() * 1000
        status, answer = await firmware_post(running.port, OTA, system_info_json(), serial=SERIAL)
        after = time.time() * 1000

        assert status == 200
        assert "mqtt" not in answer  # mqtt would win over websocket on the board
        assert "firmware" not in answer  # nothing offered by default
        assert "activation" not in answer  # activation is off by default
        stamp = answer["server_time"]["timestamp"]
        assert type(stamp) is int and before - 1000 <= stamp <= after + 1000
        offset = answer["server_time"]["timezone_offset"]
        assert type(offset) is int and offset == local_timezone_offset_min()
        ws = answer["websocket"]
        assert ws["url"] == f"ws://127.0.0.1:{WS_PORT}/xiaozhi/v1/"
        assert type(ws["version"]) is int and ws["version"] == 1
        assert ws["token"] == ""  # clears a token left in NVS by another server

        record = await running.registry.get(MAC)
        assert record is not None
        assert (record.client_id, record.board, record.firmware, record.serial) == (
            CLIENT_ID,
            "bread-compact-wifi",
            "2.4.2",
            SERIAL,
        )
        assert not record.bound


async def test_configured_firmware_timezone_url_and_token(server) -> None:
    async with server(
        firmware_version="2.4.2",
        firmware_url="http://10.0.0.2/fw.bin",
        timezone_offset_min=480,
        websocket_url="wss://voice.example/xiaozhi/v1/",
        websocket_token="secret-token",
        websocket_version=3,
    ) as running:
        status, answer = await firmware_post(running.port, OTA, system_info_json())
    assert status == 200
    firmware = answer["firmware"]
    assert firmware == {"version": "2.4.2", "url": "http://10.0.0.2/fw.bin"}
    assert all(part.isdigit() for part in firmware["version"].split("."))
    assert answer["server_time"]["timezone_offset"] == 480
    assert answer["websocket"] == {
        "url": "wss://voice.example/xiaozhi/v1/",
        "token": "secret-token",
        "version": 3,
    }


async def test_get_and_path_without_trailing_slash(server) -> None:
    async with server() as running, aiohttp.ClientSession() as http:
        base = f"http://127.0.0.1:{running.port}"
        async with http.get(base + OTA) as response:
            assert response.status == 200
            answer = await response.json()
        assert answer["websocket"]["url"] == f"ws://127.0.0.1:{WS_PORT}/xiaozhi/v1/"
        assert "Device-Id" in answer["error"]  # a human is told why nothing was recorded
        assert await running.registry.list() == []

        status, answer = await firmware_post(running.port, "/xiaozhi/ota", system_info_json())
        assert status == 200 and "websocket" in answer and "error" not in answer

        async with http.get(base + OTA, headers={"Host": "myhost.lan:8003"}) as response:
            answer = await response.json()
        assert answer["websocket"]["url"] == f"ws://myhost.lan:{WS_PORT}/xiaozhi/v1/"


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"[1, 2, 3]", b"\xff\xfe\x00garbage", b'{"board": 5, "application": []}'],
    ids=["empty", "text", "array", "binary", "wrong-types"],
)
async def test_bad_body_still_gets_200_json(server, body: bytes) -> None:
    async with server() as running:
        status, answer = await firmware_post(running.port, OTA, body)
        assert status == 200
        assert answer["websocket"]["url"].startswith("ws://")
        assert type(answer["server_time"]["timestamp"]) is int
        record = await running.registry.get(MAC)  # Device-Id header still recorded
        assert record is not None and record.board == "bread-compact-wifi"  # from User-Agent


async def test_oversized_body_still_gets_200_json(server) -> None:
    async with server() as running:
        status, answer = await firmware_post(running.port, OTA, b"{" + b" " * 100_000 + b"}")
    assert status == 200 and "websocket" in answer
