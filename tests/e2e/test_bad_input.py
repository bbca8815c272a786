"""Bad input over real sockets: the session survives garbage, limits give the right codes, and
one board's hang-up never disturbs another."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from protocol.audio import Pcm
from protocol.binary import encode_frame
from protocol.enums import ListenMode
from server.app import Providers, Server
from tests.e2e.conftest import device, is_msg, running_server
from tests.e2e.firmware_client import FirmwareClient, HandshakeRejected

pytestmark = pytest.mark.asyncio(loop_scope="session")

CORRUPT_OPUS = b"\xff\xff\xff\xff"  # code-3 TOC with an impossible frame count


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def server(
    providers: Providers, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Server]:
    async with running_server(providers, tmp_path_factory.mktemp("bad_input")) as srv:
        yield srv


def _errors(server: Server, code: str) -> float:
    for line in server.metrics.render().decode().splitlines():
        if line.startswith("xiaozhi_errors_total{") and f'code="{code}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_garbage_text_is_ignored_and_session_keeps_working(
    server: Server, speech: Callable[[str, str], Pcm]
) -> None:
    async with device(server) as board:
        for junk in (
            "{not json",
            "[1, 2]",
            '{"type": 7}',
            '{"session_id":"x","type":"weather","city":"Paris"}',
            '{"session_id":"x","type":"listen","state":"pause"}',
            '{"session_id":"x","type":"goodbye"}',
            '{"session_id":"x","type":"iot","update":true,"states":[]}',
        ):
            await board.send_text(junk)
        await board.listen_start(ListenMode.AUTO)
        await board.speak(speech("what time is it", "flite"))
        stt = await board.wait_for(is_msg("stt"), 10)
        assert stt.data["text"] == "what time is it"
    assert _errors(server, "malformed-json") >= 2
    assert _errors(server, "unknown-type") >= 2


async def test_bad_binary_frames_are_dropped_and_counted(
    server: Server, speech: Callable[[str, str], Pcm]
) -> None:
    before_size = _errors(server, "frame-size-mismatch")
    before_opus = _errors(server, "corrupt-audio")
    async with device(server, version=3) as board:
        await board.listen_start(ListenMode.AUTO)
        good = encode_frame(b"\xf8\xff\xfe", 3)
        await board.send_binary(good[:2])  # shorter than the header
        await board.send_binary(encode_frame(b"abc", 3)[:-1])  # payload_size lies
        await board.send_audio(CORRUPT_OPUS)
        await board.send_binary(encode_frame(b"", 3))  # empty (DTX-like) payload
        await board.speak(speech("what time is it", "flite"))
        stt = await board.wait_for(is_msg("stt"), 10)
        assert stt.data["text"] == "what time is it"
    assert _errors(server, "frame-size-mismatch") >= before_size + 2
    assert _errors(server, "corrupt-audio") >= before_opus + 1


async def test_oversized_message_closes_with_1009(server: Server) -> None:
    async with device(server) as board:
        await board.send_text('{"type":"x","pad":"' + "a" * (70 * 1024) + '"}')
        close = await board.wait_for(lambda r: r.kind in ("close", "eof"), 5)
        assert close.kind == "close" and close.data[0] == 1009


async def test_hang_up_without_close_frame_does_not_disturb_others(
    server: Server, speech: Callable[[str, str], Pcm]
) -> None:
    async with device(server) as steady, device(server, device_id="a0:b7:65:00:00:02") as flaky:
        await steady.listen_start(ListenMode.AUTO)
        await flaky.listen_start(ListenMode.AUTO)
        speaking = asyncio.create_task(steady.speak(speech("tell me a story", "flite")))
        for packet in flaky.encode(speech("what time is it", "flite"))[:8]:
            await flaky.send_audio(packet)
            await asyncio.sleep(0.06)
        await flaky.drop()  # TCP FIN, no Close frame, in the middle of an utterance
        await speaking
        stt = await steady.wait_for(is_msg("stt"), 10)
        assert stt.data["text"] == "tell me a story"
    await asyncio.sleep(0.2)
    assert server.sessions == 0


async def test_bad_token_gets_401_and_good_token_connects(
    providers: Providers, tmp_path: Path
) -> None:
    async with running_server(providers, tmp_path, websocket={"tokens": ["s3cret"]}) as srv:
        for token in (None, "wrong"):
            with pytest.raises(HandshakeRejected) as rejected:
                await FirmwareClient.connect(srv.ws_port, token=token)
            assert rejected.value.status == 401
        async with device(srv, token="s3cret") as board:
            assert board.session_id
        async with device(srv, path="/xiaozhi/v1/?token=s3cret&device-id=aa:bb") as board:
            assert board.session_id  # browser-style query parameters


async def test_wrong_path_gets_404(server: Server) -> None:
    with pytest.raises(HandshakeRejected) as rejected:
        await FirmwareClient.connect(server.ws_port, path="/other/")
    assert rejected.value.status == 404


async def test_too_many_connections_get_503(providers: Providers, tmp_path: Path) -> None:
    async with running_server(providers, tmp_path, websocket={"max_connections": 2}) as srv:
        async with device(srv), device(srv):
            with pytest.raises(HandshakeRejected) as rejected:
                await FirmwareClient.connect(srv.ws_port)
            assert rejected.value.status == 503
        await asyncio.sleep(0.1)
        async with device(srv) as board:  # a slot is free again
            assert board.session_id


async def test_idle_and_hello_timeouts_close_the_socket(
    providers: Providers, tmp_path: Path
) -> None:
    timeouts = {"idle_timeout_s": 0.5, "hello_timeout_s": 0.5}
    async with running_server(providers, tmp_path, websocket=timeouts) as srv:
        async with device(srv) as board:
            close = await board.wait_for(lambda r: r.kind in ("close", "eof"), 3)
            assert close.kind == "close" and close.data[0] == 1000
            assert [m["type"] for m in board.texts()] == ["hello"] + [
                m["type"] for m in board.texts()[1:] if m["type"] == "mcp"
            ]
        silent = await FirmwareClient.connect(srv.ws_port)  # never says hello
        close = await silent.wait_for(lambda r: r.kind in ("close", "eof"), 3)
        assert close.kind == "close"
        await silent.drop()


async def test_second_hello_is_answered_again(server: Server) -> None:
    async with device(server) as board:
        first = board.session_id
        again = await board.hello()
        assert again["transport"] == "websocket" and again["session_id"] == first


async def test_health_and_metrics_share_the_process(server: Server) -> None:
    import aiohttp

    async with device(server), aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{server.http_port}/healthz") as response:
            health = await response.json()
        async with http.get(f"http://127.0.0.1:{server.http_port}/metrics") as response:
            metrics = await response.text()
    assert health["status"] == "ok" and health["sessions"] == 1
    assert health["providers"]["asr"] == "pocketsphinx"
    assert "xiaozhi_connections 1.0" in metrics
