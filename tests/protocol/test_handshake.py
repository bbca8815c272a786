"""What a board sends to open a session (protocol.md §3.1, §3.3), per firmware version."""

from __future__ import annotations

import pytest

from protocol.errors import InvalidField
from protocol.handshake import (
    device_hello,
    hello_features,
    parse_version,
    upgrade_headers,
    upgrade_request,
)
from protocol.messages import Features, encode_message

AUDIO = '"audio_params":{"format":"opus","sample_rate":16000,"channels":1,"frame_duration":60}}'


def test_upgrade_request_bytes_are_the_boards() -> None:
    headers = upgrade_headers(
        device_id="a0:b7:65:12:34:56", client_id="6f1c", protocol_version=2, token="abc"
    )
    assert upgrade_request("ws://10.0.0.2:8000/xiaozhi/v1/?x=1", headers, "KEY") == (
        b"GET /xiaozhi/v1/?x=1 HTTP/1.1\r\n"
        b"Host: 10.0.0.2\r\n"  # never with the port
        b"Authorization: Bearer abc\r\n"
        b"Client-Id: 6f1c\r\n"
        b"Connection: Upgrade\r\n"
        b"Device-Id: a0:b7:65:12:34:56\r\n"
        b"Protocol-Version: 2\r\n"
        b"Sec-WebSocket-Key: KEY\r\n"
        b"Sec-WebSocket-Version: 13\r\n"
        b"Upgrade: websocket\r\n\r\n"
    )


@pytest.mark.parametrize(
    ("token", "auth"), [("abc", "Bearer abc"), ("Token x", "Token x"), ("", None), (None, None)]
)
def test_authorization_only_with_a_token(token: str | None, auth: str | None) -> None:
    headers = upgrade_headers(device_id="d", client_id="c", protocol_version=1, token=token)
    assert headers.get("Authorization") == auth


@pytest.mark.parametrize(
    ("version", "legacy", "features"),
    [
        ("2.4.2", False, Features(mcp=True, glyph_push=False)),
        ("2.4.0", False, Features(mcp=True, glyph_push=False)),
        ("2.3.9", False, Features(mcp=True)),
        ("1.8.0", False, Features(mcp=True)),
        ("1.7.7", True, Features()),
        ("1.6.6", False, Features(mcp=True)),
        ("1.6.5", False, Features()),
    ],
)
def test_features_follow_the_firmware_version(
    version: str, legacy: bool, features: Features
) -> None:
    assert hello_features(version, legacy_iot=legacy) == features


def test_exact_hellos() -> None:
    modern = device_hello("2.4.2", 1, glyph_push=True)
    assert encode_message(modern) == (
        '{"type":"hello","version":1,"features":{"mcp":true,"glyph_push":true},'
        '"text_font":{"bundle":"noto-v1","charset":"common","size":20,"bpp":4},'
        '"transport":"websocket",' + AUDIO
    )
    legacy = device_hello("1.7.7", 3, legacy_iot=True, server_aec=True)
    assert encode_message(legacy) == (
        '{"type":"hello","version":3,"features":{"aec":true},"transport":"websocket",' + AUDIO
    )


def test_builds_that_never_existed_are_refused() -> None:
    with pytest.raises(InvalidField, match=r"legacy IoT builds end with v1\.7\.x"):
        hello_features("1.8.0", legacy_iot=True)
    with pytest.raises(InvalidField, match=r"glyph push exists from v2\.4\.0"):
        hello_features("2.3.0", glyph_push=True)
    for bad in ("v1.0", "1..2", "", "2.x"):
        with pytest.raises(InvalidField):
            parse_version(bad)
    assert parse_version("2.4.2") == (2, 4, 2)
