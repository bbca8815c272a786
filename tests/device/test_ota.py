"""OTA boot: request bytes exact (raw TCP capture), answer application, activation, retries."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from device.errors import OtaUnreachable
from device.identity import DeviceIdentity, IdentityStore
from device.ota import OtaClient, OtaError, OtaTimings, activation_url, version_newer

FAST = OtaTimings(retry_base_s=0.05, activate_pending_s=0.03, activate_other_s=0.1)


class HttpCapture:
    """Raw HTTP server: records (time, request bytes); answers from a per-path script."""

    def __init__(self) -> None:
        self.requests: list[tuple[float, bytes]] = []
        self.answers: dict[str, list[tuple[int, str]]] = {}
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(
            next(
                ln.split(b":")[1]
                for ln in head.split(b"\r\n")
                if ln.lower().startswith(b"content-length")
            )
        )
        body = await reader.readexactly(length)
        self.requests.append((time.monotonic(), head + body))
        path = head.split(b" ")[1].decode()
        script = self.answers.get(path, [(404, "")])
        status, text = script.pop(0) if len(script) > 1 else script[0]
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Length: {len(text.encode())}\r\n"
            f"Content-Type: application/json\r\n\r\n{text}".encode()
        )
        await writer.drain()
        writer.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/xiaozhi/ota/"

    def paths(self) -> list[str]:
        return [r.split(b" ")[1].decode() for _, r in self.requests]


@pytest.fixture
async def http() -> AsyncIterator[HttpCapture]:
    cap = HttpCapture()
    server = await asyncio.start_server(cap.handle, "127.0.0.1", 0)
    cap.port = server.sockets[0].getsockname()[1]
    yield cap
    server.close()


def ident() -> DeviceIdentity:
    return DeviceIdentity(
        mac="a0:b7:65:12:34:56",
        uuid="6f1c2c1e-1d1b-4b8e-9a52-0c4d0a8c1f00",
        board_name="bread-compact-wifi",
        firmware_version="2.4.2",
        language="en-US",
    )


WS = {"websocket": {"url": "ws://127.0.0.1:9/xiaozhi/v1/", "token": "abc", "version": 2}}


async def test_request_bytes_exact(http: HttpCapture, tmp_path: Path) -> None:
    http.answers["/xiaozhi/ota/"] = [(200, json.dumps(WS))]
    identity = ident()
    outcome = await OtaClient(identity, IdentityStore(tmp_path / "s.json"), http.url, FAST).run()
    assert outcome.transport == "websocket" and outcome.config_fresh
    raw = http.requests[0][1]
    head, body = raw.split(b"\r\n\r\n", 1)
    assert head.decode().split("\r\n") == [
        "POST /xiaozhi/ota/ HTTP/1.1",
        f"Host: 127.0.0.1:{http.port}",
        "Accept-Language: en-US",
        "Activation-Version: 1",
        "Client-Id: 6f1c2c1e-1d1b-4b8e-9a52-0c4d0a8c1f00",
        "Content-Type: application/json",
        "Device-Id: a0:b7:65:12:34:56",
        "User-Agent: bread-compact-wifi/2.4.2",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    text = body.decode()
    assert text.startswith(
        '{"version":2,"language":"en-US","flash_size":16777216,"minimum_free_heap_size":"'
    )
    info = json.loads(text)
    assert text == json.dumps(info, separators=(",", ":"), ensure_ascii=False)  # compact
    assert list(info) == [
        "version",
        "language",
        "flash_size",
        "minimum_free_heap_size",
        "mac_address",
        "uuid",
        "chip_model_name",
        "chip_info",
        "application",
        "partition_table",
        "ota",
        "display",
        "board",
    ]
    assert isinstance(info["minimum_free_heap_size"], str)
    assert info["minimum_free_heap_size"].isdigit()
    assert (info["mac_address"], info["uuid"]) == (identity.mac, identity.uuid)
    assert info["application"]["version"] == "2.4.2"
    assert len(info["application"]["elf_sha256"]) == 64
    assert list(info["chip_info"]) == ["model", "cores", "revision", "features"]
    assert list(info["partition_table"][0]) == ["label", "type", "subtype", "address", "size"]


async def test_answer_persisted_old_keys_survive(http: HttpCapture, tmp_path: Path) -> None:
    store = IdentityStore(tmp_path / "s.json")
    identity = ident()
    http.answers["/xiaozhi/ota/"] = [(200, json.dumps(WS))]
    await OtaClient(identity, store, http.url, FAST).run()
    second = {
        "websocket": {"url": "ws://127.0.0.1:9/v2/", "extra": 5, "flag": True, "obj": {}},
        "server_time": {"timestamp": 1767225600000, "timezone_offset": 480},
    }
    http.answers["/xiaozhi/ota/"] = [(200, json.dumps(second))]
    outcome = await OtaClient(identity, store, http.url, FAST).run()
    reloaded = IdentityStore(tmp_path / "s.json").load()
    assert reloaded.websocket == {
        "url": "ws://127.0.0.1:9/v2/",
        "token": "abc",
        "version": 2,
        "extra": 5,
    }
    assert reloaded.mac == identity.mac and reloaded.uuid == identity.uuid
    assert outcome.clock_offset_ms is not None
    expected = 1767225600000 + 480 * 60_000 - time.time() * 1000
    assert abs(outcome.clock_offset_ms - expected) < 5000


@pytest.mark.parametrize(
    ("answer", "transport"),
    [
        ({**WS, "mqtt": {"endpoint": "h:1883", "keepalive": 60}}, "mqtt"),
        ({}, "mqtt"),
        (WS, "websocket"),
    ],
)
async def test_transport_choice(
    http: HttpCapture, answer: dict[str, object], transport: str
) -> None:
    http.answers["/xiaozhi/ota/"] = [(200, json.dumps(answer))]
    identity = ident()
    outcome = await OtaClient(identity, IdentityStore(None), http.url, FAST).run()
    assert outcome.transport == transport
    if "mqtt" in answer:
        assert identity.mqtt == {"endpoint": "h:1883", "keepalive": 60}


def test_version_compare() -> None:
    assert version_newer("2.4.3", "2.4.2")
    assert version_newer("2.10.0", "2.9.9")
    assert version_newer("2.4.2.1", "2.4.2")
    assert not version_newer("2.4.2", "2.4.2")
    assert not version_newer("1.9", "2.4.2")
    with pytest.raises(OtaError, match="not numeric"):
        version_newer("v1.0", "2.4.2")
    assert activation_url("http://h/ota/") == "http://h/ota/activate"
    assert activation_url("http://h/ota") == "http://h/ota/activate"


async def test_firmware_upgrade_offer(http: HttpCapture) -> None:
    http.answers["/xiaozhi/ota/"] = [
        (
            200,
            json.dumps(
                {**WS, "firmware": {"version": "2.4.1", "url": "http://x/fw.bin", "force": 1}}
            ),
        )
    ]
    outcome = await OtaClient(ident(), IdentityStore(None), http.url, FAST).run()
    assert outcome.upgrade_to == "2.4.1"
    http.answers["/xiaozhi/ota/"] = [
        (200, json.dumps({**WS, "firmware": {"version": "2.4.1", "url": "u"}}))
    ]
    outcome = await OtaClient(ident(), IdentityStore(None), http.url, FAST).run()
    assert outcome.upgrade_to is None


async def test_activation_loop(http: HttpCapture) -> None:
    act = {**WS, "activation": {"code": "123456", "message": "m", "challenge": "ch"}}
    http.answers["/xiaozhi/ota/"] = [(200, json.dumps(act)), (200, json.dumps(WS))]
    http.answers["/xiaozhi/ota/activate"] = [(202, "{}"), (500, ""), (200, "{}")]
    outcome = await OtaClient(ident(), IdentityStore(None), http.url, FAST).run()
    assert http.paths() == [
        "/xiaozhi/ota/",
        "/xiaozhi/ota/activate",
        "/xiaozhi/ota/activate",
        "/xiaozhi/ota/activate",
        "/xiaozhi/ota/",
    ]
    assert outcome.activation_code == "123456" and outcome.activate_posts == 3
    times = [t for t, _ in http.requests]
    assert 0.03 <= times[2] - times[1] < 0.1  # 202 → pending delay
    assert times[3] - times[2] >= 0.1  # other → the longer delay
    head, body = http.requests[1][1].split(b"\r\n\r\n", 1)
    assert body == b"{}"
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /xiaozhi/ota/activate HTTP/1.1"
    assert lines[2:8] == http.requests[0][1].decode().split("\r\n")[2:8]


async def test_activation_without_challenge_never_posts(http: HttpCapture) -> None:
    act = {**WS, "activation": {"code": "1", "message": "m"}}
    http.answers["/xiaozhi/ota/"] = [(200, json.dumps(act)), (200, json.dumps(WS))]
    timings = OtaTimings(activate_other_s=0.01, activate_tries=10)
    await OtaClient(ident(), IdentityStore(None), http.url, timings).run()
    assert http.paths() == ["/xiaozhi/ota/", "/xiaozhi/ota/"]


async def test_activation_gives_up_after_ten_tries_then_rechecks(http: HttpCapture) -> None:
    act = {**WS, "activation": {"challenge": "c"}}
    http.answers["/xiaozhi/ota/"] = [(200, json.dumps(act)), (200, json.dumps(WS))]
    http.answers["/xiaozhi/ota/activate"] = [(202, "{}")]
    timings = OtaTimings(activate_pending_s=0.001)
    await OtaClient(ident(), IdentityStore(None), http.url, timings).run()
    assert http.paths().count("/xiaozhi/ota/activate") == 10
    assert http.paths()[-1] == "/xiaozhi/ota/"


async def test_retry_backoff_doubles_and_gives_up(http: HttpCapture) -> None:
    http.answers["/xiaozhi/ota/"] = [
        (500, "x"),
        (200, "not json"),
        (200, "[1]"),
        (200, json.dumps(WS)),
    ]
    outcome = await OtaClient(ident(), IdentityStore(None), http.url, FAST).run()
    assert outcome.config_fresh and outcome.ota_posts == 4
    t = [t for t, _ in http.requests]
    gaps = [b - a for a, b in itertools.pairwise(t)]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1 and gaps[2] >= 0.2
    http.requests.clear()
    http.answers["/xiaozhi/ota/"] = [(503, "")]
    timings = OtaTimings(retry_base_s=0.001)
    outcome = await OtaClient(ident(), IdentityStore(None), http.url, timings).run()
    assert len(http.requests) == 10
    assert not outcome.config_fresh and outcome.transport == "mqtt"


async def test_refused_port_is_diagnosed_at_once_not_retried() -> None:
    client = OtaClient(ident(), IdentityStore(None), "http://127.0.0.1:1/ota/", FAST)
    with pytest.raises(OtaUnreachable, match=r"connection refused.*8003") as exc:
        await client.run()
    assert exc.value.code == "ota-unreachable"
