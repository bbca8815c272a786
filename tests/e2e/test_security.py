"""Security end to end on loopback: TLS with the generated pair, device JWTs (401), the failed-auth
lockout (429), connection limits (503), slow handshakes dropped, floods dropped and closed, and no
token in the log."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from device import http, tls
from device.app import Device, DeviceOptions
from device.audio.sources import synthesize as device_synthesize
from device.errors import DeviceError
from device.events import DeviceEvent, SttReceived
from device.scenario import Script, run_script
from device.wsclient import RawWebSocket
from protocol.audio import Pcm
from protocol.enums import ListenMode
from protocol.handshake import upgrade_headers
from server.app import Providers, Server
from server.config import load_settings
from server.security.auth import DeviceTokens, load_secret
from server.security.tls import write_self_signed
from tests.e2e.conftest import device, is_msg, running_server
from tests.e2e.firmware_client import FirmwareClient, HandshakeRejected
from tests.timing import scaled

pytestmark = pytest.mark.asyncio(loop_scope="session")

MAC = "a0:b7:65:12:34:56"


def _count(server: Server, metric: str, label: str) -> float:
    total = 0.0
    for line in server.metrics.render().decode().splitlines():
        if line.startswith(metric + "{") and f'"{label}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture
def trust_reset() -> Iterator[None]:
    yield
    tls.configure()


async def _ota(http_port: int, *, scheme: str = "http", mac: str = MAC) -> dict[str, object]:
    url = f"{scheme}://127.0.0.1:{http_port}/xiaozhi/ota/"
    body = json.dumps({"application": {"version": "2.4.2"}, "mac_address": mac}).encode()
    headers = {"Device-Id": mac, "Client-Id": "3b1f0c52", "Content-Type": "application/json"}
    response = await http.request("POST", url, headers, body, timeout_s=scaled(10))
    assert response.status == 200
    answer: dict[str, object] = json.loads(response.body)
    return answer


async def test_tls_wss_and_https_with_the_generated_cert_and_ca(
    providers: Providers, tmp_path: Path, trust_reset: None
) -> None:
    pair = write_self_signed(tmp_path / "tls" / "server.crt", tmp_path / "tls" / "server.key")
    security = {"tls": {"enabled": True, "cert_file": pair.cert_file, "key_file": pair.key_file}}
    async with running_server(providers, tmp_path, security=security) as srv:
        # no trust configured: the self-signed certificate is refused, on both ports
        with pytest.raises((DeviceError, http.HttpError), match=r"(?i)certificate"):
            await _ota(srv.http_port, scheme="https")
        wss = f"wss://127.0.0.1:{srv.ws_port}/xiaozhi/v1/"
        with pytest.raises(DeviceError, match=r"(?i)certificate"):
            await RawWebSocket.connect(
                wss, upgrade_headers(device_id=MAC, client_id="c", protocol_version=1)
            )
        # --insecure: no check at all
        tls.configure(insecure=True)
        assert (await _ota(srv.http_port, scheme="https"))["websocket"]
        # --ca server.crt: verified, and the OTA answer hands out wss://
        tls.configure(pair.cert_file)
        answer = await _ota(srv.http_port, scheme="https")
        assert answer["websocket"]["url"] == wss  # type: ignore[index]
        events: list[DeviceEvent] = []
        opts = DeviceOptions(
            ota_url=f"https://127.0.0.1:{srv.http_port}/xiaozhi/ota/",
            state_file=tmp_path / "state.json",
        )
        board = await Device.create(opts, events.append)
        try:
            await board.boot()
            utts = [await device_synthesize("turn on the lamp")]
            await run_script(board.controller, Script(utts, think_s=0.3, turn_timeout_s=20))
        finally:
            await board.close()
        assert [e.text for e in events if isinstance(e, SttReceived)] == ["turn on the lamp"]
        # plain ws:// to the TLS port is not a WebSocket handshake: refused, the server lives on
        with pytest.raises((HandshakeRejected, OSError, asyncio.IncompleteReadError)):
            await FirmwareClient.connect(srv.ws_port)
        assert (await _ota(srv.http_port, scheme="https"))["websocket"]


async def test_conformance_suite_runs_over_tls_with_ca(
    providers: Providers, tmp_path: Path, trust_reset: None
) -> None:
    from conformance.cli import main as conformance

    pair = write_self_signed(tmp_path / "server.crt", tmp_path / "server.key")
    security = {"tls": {"enabled": True, "cert_file": pair.cert_file, "key_file": pair.key_file}}
    websocket = {"idle_timeout_s": 8.0}
    async with running_server(providers, tmp_path, security=security, websocket=websocket) as srv:
        argv = [
            "server",
            f"wss://127.0.0.1:{srv.ws_port}/xiaozhi/v1/",
            "--ota-url",
            f"https://127.0.0.1:{srv.http_port}/xiaozhi/ota/",
            "--ca",
            str(pair.cert_file),
            "--idle-limit",
            "8",
            "--idle-wait",
            str(scaled(13)),
        ]
        status = await asyncio.to_thread(conformance, argv)
    assert status == 0


async def test_device_jwt_from_ota_opens_the_socket_and_bad_ones_get_401(
    providers: Providers, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret_file = tmp_path / "jwt-secret"
    security = {"auth": {"device_tokens": True, "secret_file": secret_file}}
    caplog.set_level(logging.DEBUG)
    async with running_server(providers, tmp_path, security=security) as srv:
        token = str((await _ota(srv.http_port))["websocket"]["token"])  # type: ignore[index]
        assert token.startswith("eyJ") and token.count(".") == 2
        async with device(srv, token=token, device_id=MAC, wait_tools=False) as board:
            assert board.session_id
        secret = load_secret(secret_file)
        expired = DeviceTokens(secret, 3600, clock=lambda: time.time() - 7200).issue(MAC)
        forged = DeviceTokens(b"f" * 64, 3600).issue(MAC)
        other = DeviceTokens(secret, 3600).issue("a0:b7:65:00:00:99")
        refused = {}
        for name, bad in (("expired", expired), ("forged", forged), ("other", other)):
            with pytest.raises(HandshakeRejected) as rejected:
                await FirmwareClient.connect(srv.ws_port, token=bad, device_id=MAC)
            refused[name] = rejected.value
        with pytest.raises(HandshakeRejected) as missing:
            await FirmwareClient.connect(srv.ws_port, device_id=MAC)
        assert {r.status for r in refused.values()} == {401} and missing.value.status == 401
        assert "expired" in refused["expired"].head
        assert "signature" in refused["forged"].head
        assert "another device" in refused["other"].head
        assert _count(srv, "xiaozhi_errors_total", "auth-refused") == 4
    log = caplog.text
    assert "refusing connection" in log
    for secret_value in (token, expired, forged, other):
        assert secret_value not in log
    assert "eyJ" not in log


async def test_activation_withholds_the_token_until_the_board_is_bound(
    providers: Providers, tmp_path: Path
) -> None:
    security = {"auth": {"device_tokens": True, "secret_file": tmp_path / "jwt-secret"}}
    settings = load_settings(
        websocket={"host": "127.0.0.1", "port": 0},
        ota={"host": "127.0.0.1", "port": 0, "db_path": tmp_path / "d.sqlite3", "activation": True},
        security=security,
    )
    async with Server(settings, providers=providers) as srv:
        first = await _ota(srv.http_port)
        assert first["websocket"]["token"] == "" and "activation" in first  # type: ignore[index]
        code = first["activation"]["code"]  # type: ignore[index]
        assert srv._registry is not None and await srv._registry.bind(str(code))
        bound = await _ota(srv.http_port)
        assert "activation" not in bound
        token = str(bound["websocket"]["token"])  # type: ignore[index]
        async with device(srv, token=token, device_id=MAC, wait_tools=False) as board:
            assert board.session_id


async def test_failed_logins_lock_the_ip_out_with_429(providers: Providers, tmp_path: Path) -> None:
    security = {"auth": {"failed_auth_limit": 3, "lockout_s": 30}}
    async with running_server(
        providers, tmp_path, websocket={"tokens": ["good-token"]}, security=security
    ) as srv:
        for _ in range(3):
            with pytest.raises(HandshakeRejected) as rejected:
                await FirmwareClient.connect(srv.ws_port, token="guess")
            assert rejected.value.status == 401
        with pytest.raises(HandshakeRejected) as locked:
            await FirmwareClient.connect(srv.ws_port, token="good-token")
        assert locked.value.status == 429 and "retry-after:" in locked.value.head.lower()
        assert _count(srv, "xiaozhi_errors_total", "auth-locked-out") == 1


async def test_connection_limits_per_ip_and_in_total_give_503(
    providers: Providers, tmp_path: Path
) -> None:
    security = {"limits": {"max_connections_per_ip": 2, "limit_loopback": True}}
    async with running_server(providers, tmp_path, security=security) as srv:
        async with device(srv, wait_tools=False), device(srv, wait_tools=False):
            with pytest.raises(HandshakeRejected) as rejected:
                await FirmwareClient.connect(srv.ws_port)
            assert rejected.value.status == 503
        assert _count(srv, "xiaozhi_errors_total", "connection-limit") == 1
        await asyncio.sleep(0.1)
        async with device(srv, wait_tools=False) as board:  # a slot is free again
            assert board.session_id
    # half-open sockets (TCP only, no request yet) count towards the total
    async with running_server(providers, tmp_path, websocket={"max_connections": 2}) as srv:
        idle = [await asyncio.open_connection("127.0.0.1", srv.ws_port) for _ in range(2)]
        try:
            await asyncio.sleep(0.1)
            with pytest.raises(HandshakeRejected) as full:
                await FirmwareClient.connect(srv.ws_port)
            assert full.value.status == 503
            assert _count(srv, "xiaozhi_errors_total", "connection-limit") == 1
        finally:
            for _, writer in idle:
                writer.close()


async def test_slow_and_silent_handshakes_are_dropped(providers: Providers, tmp_path: Path) -> None:
    security = {"limits": {"handshake_timeout_s": 0.5}}
    async with running_server(providers, tmp_path, security=security) as srv:
        silent = await asyncio.open_connection("127.0.0.1", srv.ws_port)
        slow = await asyncio.open_connection("127.0.0.1", srv.ws_port)
        slow[1].write(b"GET /xiaozhi/v1/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
        t0 = time.monotonic()
        for reader, writer in (silent, slow):
            data = await asyncio.wait_for(reader.read(), scaled(5))  # EOF: the server hung up
            writer.close()
            assert b"101" not in data
        assert time.monotonic() - t0 < scaled(3)
        async with device(srv, wait_tools=False) as board:  # the port still serves
            assert board.session_id


async def _flood(board: FirmwareClient, packet: bytes, frames: int) -> None:
    for k in range(frames):
        try:
            await board.send_audio(packet)
        except (ConnectionError, RuntimeError):
            return
        if k % 50 == 0:
            await asyncio.sleep(0)


async def test_audio_faster_than_real_time_is_dropped_counted_and_closed(
    providers: Providers, tmp_path: Path, speech: Callable[[str, str], Pcm]
) -> None:
    limits = {
        "max_audio_frames_per_s": 30,
        "audio_burst_frames": 40,
        "flood_close_after_frames": 600,
    }
    async with running_server(providers, tmp_path, security={"limits": limits}) as srv:
        async with device(srv, device_id="a0:b7:65:00:00:01") as flooder, device(srv) as steady:
            await flooder.listen_start(ListenMode.AUTO)
            packet = flooder.encode(speech("tell me a story", "flite"))[10]
            peak = 0

            async def watch() -> None:
                nonlocal peak
                while True:
                    peak = max([peak, *(len(c.inbox) for c in srv._connections)])
                    await asyncio.sleep(0.005)

            watcher = asyncio.create_task(watch())
            flood = asyncio.create_task(_flood(flooder, packet, 5000))
            await steady.listen_start(ListenMode.AUTO)
            await steady.speak(speech("turn on the lamp", "flite"))
            stt = await steady.wait_for(is_msg("stt"), scaled(15))
            assert stt.data["text"] == "turn on the lamp"  # the other session is unaffected
            close = await flooder.wait_for(lambda r: r.kind in ("close", "eof"), scaled(15))
            await flood
            watcher.cancel()
        assert close.kind == "close" and close.data[0] == 1008
        assert _count(srv, "xiaozhi_frames_dropped_total", "uplink-flood") >= 500
        assert _count(srv, "xiaozhi_errors_total", "uplink-flood-closed") == 1
        assert peak <= 2 * srv._deps.uplink_queue_frames + 64  # the inbox bound held


async def test_giant_and_flooding_text_frames_are_refused(
    providers: Providers, tmp_path: Path, speech: Callable[[str, str], Pcm]
) -> None:
    limits = {"max_messages_per_s": 20, "message_burst": 50}
    async with running_server(providers, tmp_path, security={"limits": limits}) as srv:
        async with device(srv, wait_tools=False) as board:
            await board.send_text('{"type":"listen","state":"detect","text":"' + "x" * 70000 + '"}')
            close = await board.wait_for(lambda r: r.kind in ("close", "eof"), scaled(5))
            assert close.kind == "close" and close.data[0] == 1009
        await asyncio.sleep(0.1)
        assert _count(srv, "xiaozhi_errors_total", "message-too-big") == 1
        async with device(srv, wait_tools=False) as board:
            ping = json.dumps({"session_id": board.session_id, "type": "weather"})
            for _ in range(500):
                try:
                    await board.send_text(ping)
                except (ConnectionError, RuntimeError):
                    break
            close = await board.wait_for(lambda r: r.kind in ("close", "eof"), scaled(5))
            assert close.kind == "close" and close.data[0] == 1008
        assert _count(srv, "xiaozhi_errors_total", "uplink-flood-closed") == 1
        async with device(srv) as board:  # the server serves the next board normally
            await board.listen_start(ListenMode.AUTO)
            await board.speak(speech("turn on the lamp", "flite"))
            stt = await board.wait_for(is_msg("stt"), scaled(15))
            assert stt.data["text"] == "turn on the lamp"
