"""Activation (protocol.md §2.4, §9 item 4): pending → bound, across a server restart."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re

from server.http import run_devices_command

from .conftest import make_settings
from .firmware import SERIAL, firmware_post, system_info_json

OTA = "/xiaozhi/ota/"
ACTIVATE = "/xiaozhi/ota/activate"
HMAC_KEY = "00112233445566778899aabbccddeeff" * 2


def hmac_body(challenge: str, key_hex: str = HMAC_KEY, serial: str = SERIAL) -> bytes:
    digest = hmac.new(bytes.fromhex(key_hex), challenge.encode(), hashlib.sha256).hexdigest()
    body = {"algorithm": "hmac-sha256", "serial_number": serial, "challenge": challenge}
    return json.dumps({**body, "hmac": digest}).encode()


async def test_unknown_device_to_bound_across_restart(server, db_path, capsys) -> None:
    async with server(activation=True) as running:
        status, answer = await firmware_post(running.port, ACTIVATE, b"{}")
        assert status == 404 and "error" in answer  # never seen by the OTA endpoint

        status, answer = await firmware_post(running.port, OTA, system_info_json())
        assert status == 200 and "websocket" in answer
        activation = answer["activation"]
        code, challenge = activation["code"], activation["challenge"]
        assert re.fullmatch(r"\d{6}", code)
        assert isinstance(challenge, str) and challenge
        assert code in activation["message"]
        assert type(activation["timeout_ms"]) is int

        _, again = await firmware_post(running.port, OTA, system_info_json())
        assert again["activation"]["code"] == code  # stable while the board loops
        assert again["activation"]["challenge"] == challenge

        status, answer = await firmware_post(running.port, ACTIVATE, b"{}")
        assert status == 202

    settings = make_settings(db_path, activation=True)
    wrong = "000000" if code != "000000" else "111111"
    assert await asyncio.to_thread(run_devices_command, ["bind", wrong], settings) == 1
    assert "no pending device" in capsys.readouterr().err
    assert await asyncio.to_thread(run_devices_command, ["bind", code], settings) == 0
    assert "a0:b7:65:12:34:56" in capsys.readouterr().out

    async with server(activation=True) as restarted:  # new registry + app, same SQLite file
        status, answer = await firmware_post(restarted.port, ACTIVATE, b"{}")
        assert status == 200
        status, answer = await firmware_post(restarted.port, OTA, system_info_json())
        assert status == 200 and "activation" not in answer and "websocket" in answer
        assert await restarted.registry.is_bound("A0:B7:65:12:34:56")

    assert await asyncio.to_thread(run_devices_command, ["list"], settings) == 0
    listing = capsys.readouterr().out
    assert "a0:b7:65:12:34:56" in listing and "bound" in listing and "2.4.2" in listing


async def test_auto_bind_on_first_activate(server) -> None:
    async with server(activation=True, auto_bind=True) as running:
        _, answer = await firmware_post(running.port, OTA, system_info_json())
        assert "challenge" in answer["activation"]
        status, answer = await firmware_post(running.port, ACTIVATE, b"{}")
        assert status == 200 and answer["status"] == "bound"
        _, answer = await firmware_post(running.port, OTA, system_info_json())
        assert "activation" not in answer


async def test_hmac_bad_then_good(server) -> None:
    async with server(activation=True, hmac_keys={SERIAL: HMAC_KEY}) as running:
        _, answer = await firmware_post(running.port, OTA, system_info_json(), serial=SERIAL)
        challenge = answer["activation"]["challenge"]

        wrong_key = "ff" * 32
        status, answer = await firmware_post(
            running.port, ACTIVATE, hmac_body(challenge, wrong_key), serial=SERIAL
        )
        assert status == 401 and "hmac" in answer["error"]
        status, answer = await firmware_post(
            running.port, ACTIVATE, hmac_body("stale-challenge"), serial=SERIAL
        )
        assert status == 401 and "challenge" in answer["error"]
        _, answer = await firmware_post(running.port, OTA, system_info_json(), serial=SERIAL)
        assert answer["activation"]["challenge"] == challenge  # still pending

        status, answer = await firmware_post(
            running.port, ACTIVATE, hmac_body(challenge), serial=SERIAL
        )
        assert status == 200
        _, answer = await firmware_post(running.port, OTA, system_info_json(), serial=SERIAL)
        assert "activation" not in answer


async def test_hmac_for_serial_without_key_waits_for_code(server) -> None:
    async with server(activation=True) as running:
        _, answer = await firmware_post(running.port, OTA, system_info_json(), serial=SERIAL)
        status, _ = await firmware_post(
            running.port, ACTIVATE, hmac_body(answer["activation"]["challenge"]), serial=SERIAL
        )
        assert status == 202
