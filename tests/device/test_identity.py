"""Persistent identity (the board's NVS stand-in)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from device.identity import DeviceIdentity, IdentityStore


def test_identity_created_once_and_persisted(tmp_path: Path) -> None:
    store = IdentityStore(tmp_path / "dev" / "state.json")
    first = store.load(board_name="my-board", firmware_version="2.4.2", language="zh-CN")
    assert re.fullmatch(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}", first.mac)
    assert int(first.mac[:2], 16) & 0x03 == 0x02  # locally administered unicast
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", first.uuid
    )
    first.session_id = "abc"
    first.websocket["token"] = "t"
    store.save(first)
    again = IdentityStore(tmp_path / "dev" / "state.json").load()
    assert again == first
    assert again.user_agent == "my-board/2.4.2"


def test_ws_version_defaults_to_1() -> None:
    ident = DeviceIdentity()
    assert ident.ws_version == 1
    ident.websocket["version"] = 0
    assert ident.ws_version == 1
    ident.websocket["version"] = 3
    assert ident.ws_version == 3


def test_corrupt_state_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text("[1,2")
    with pytest.raises(ValueError, match="unreadable"):
        IdentityStore(tmp_path / "s.json").load()
