"""The sequenced protocol at ``/ws/asr`` over real sockets with real speech (flite,
pocketsphinx): JWT good/bad/expired (401 at the handshake), wrong subprotocol (1003), cuts in
the middle (server-side abort, client-side drop), resume + resend from ``last_seq``."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from clients.sequenced_client import SequencedClient
from protocol.audio import Pcm
from server.app import Providers, Server
from server.transcribe.jwt_auth import encode_hs256
from tests.e2e.conftest import running_server
from tests.timing import scaled

pytestmark = pytest.mark.asyncio(loop_scope="session")

KEY = "test-key-not-secret"
PHRASES = ["turn on the kitchen lamp", "what time is it", "set the volume to thirty"]


def token(sub: str = "alice", *, exp_in_s: float = 600, key: str = KEY) -> str:
    return encode_hs256({"sub": sub, "exp": int(time.time() + exp_in_s)}, key)


def silence(seconds: float) -> Pcm:
    return np.zeros(int(16000 * seconds), dtype=np.int16)


@pytest.fixture(scope="module")
def audio(speech: Callable[[str, str], Pcm]) -> Pcm:
    return np.concatenate(
        [
            silence(0.3),
            speech("turn on the kitchen lamp", "flite"),
            silence(1.0),
            speech("set the volume to thirty", "flite"),
            silence(0.8),
        ]
    )


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def server(
    providers: Providers, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Server]:
    transcribe: dict[str, Any] = {"phrases": PHRASES, "jwt_keys": [KEY], "resume_window_s": 30}
    async with running_server(
        providers, tmp_path_factory.mktemp("seq"), transcribe=transcribe
    ) as srv:
        yield srv


def url(server: Server) -> str:
    return f"ws://127.0.0.1:{server.ws_port}/ws/asr"


async def test_uncut_stream_gives_finals_with_confidence_nbest_entities(
    server: Server, audio: Pcm
) -> None:
    result = await SequencedClient(url(server), token(), pace=0).transcribe(audio)
    assert result.text == "turn on the kitchen lamp set the volume to thirty"
    packets = -(-len(audio) * 2 // 3200)
    assert result.ended["packets"] == packets and result.ended["duplicates"] == 0
    first = result.finals[0]
    assert set(first) >= {"type", "text", "seq", "is_final", "confidence", "nbest", "entities"}
    assert first["nbest"][0]["text"] == "turn on the kitchen lamp"
    assert result.partials, "partial results while streaming"


async def test_entities_in_a_final(server: Server, speech: Callable[[str, str], Pcm]) -> None:
    clip = np.concatenate([silence(0.3), speech("set the volume to thirty", "flite"), silence(0.8)])
    result = await SequencedClient(url(server), token(), pace=0).transcribe(clip)
    final = result.finals[0]
    assert final["text"] == "set the volume to thirty"
    assert final["entities"] == [{"type": "number", "value": "30", "start": 18, "end": 24}]


@pytest.mark.parametrize("cut", ["server-abort", "client-drop"])
async def test_cut_resume_resend_equals_uncut(server: Server, audio: Pcm, cut: str) -> None:
    total = -(-len(audio) * 2 // 3200)
    cut_at = total // 2
    done = []

    def on_sent(client: SequencedClient, seq: int) -> None:
        if seq == cut_at and not done:
            done.append(seq)
            if cut == "client-drop":
                client.drop()
            else:  # the server drops the TCP connection of this session
                session = server.transcribe.sessions.sessions[client.result.session]
                session.channel.abort()

    uncut = await SequencedClient(url(server), token(), pace=0).transcribe(audio)
    client = SequencedClient(url(server), token(), pace=4.0, first_delay_s=0.05, on_sent=on_sent)
    result = await client.transcribe(audio)
    assert done and result.reconnects >= 1
    assert result.text == uncut.text == "turn on the kitchen lamp set the volume to thirty"
    assert [m["text"] for m in result.finals.values()] == [m["text"] for m in uncut.finals.values()]
    ended = result.ended
    assert ended["packets"] == total, "each packet counted exactly once"
    assert ended["last_seq"] == total - 1
    assert result.packets_sent >= total  # the lost ones were resent


async def test_bad_and_expired_jwt_are_401(server: Server) -> None:
    for bad in (token(key="wrong-key"), token(exp_in_s=-3600), "not-a-jwt", ""):
        headers = {"Authorization": f"Bearer {bad}"} if bad else {}
        with pytest.raises(InvalidStatus) as refused:
            async with connect(
                url(server), additional_headers=headers, subprotocols=["asr-protocol-v1"]
            ):  # type: ignore[list-item]
                pass
        assert refused.value.response.status_code == 401


async def test_wrong_subprotocol_closes_1003(server: Server) -> None:
    for offered in (["asr-protocol-v0"], None):
        async with connect(
            url(server),
            additional_headers={"Authorization": f"Bearer {token()}"},
            subprotocols=offered,
        ) as ws:  # type: ignore[arg-type]
            await ws.wait_closed()
            assert ws.close_code == 1003 and ws.close_reason == "Unsupported Protocol"


async def test_gap_is_nacked_and_duplicate_dropped(server: Server) -> None:
    headers = {"Authorization": f"Bearer {token()}"}
    async with connect(
        url(server), additional_headers=headers, subprotocols=["asr-protocol-v1"]
    ) as ws:  # type: ignore[list-item]
        greeting = json.loads(await ws.recv())
        assert greeting["action"] == "session" and greeting["last_seq"] == -1
        sock = ws.transport.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        pcm = bytes(3200)
        for seq in (0, 0, 2):
            await ws.send(
                json.dumps({"type": "audio", "seq": seq, "timestamp": 0, "data_length": len(pcm)})
            )
            await ws.send(pcm)
        nack = json.loads(await asyncio.wait_for(ws.recv(), scaled(5)))
        assert nack == {"type": "control", "action": "nack", "expected": 1, "got": 2}
        await ws.send(json.dumps({"type": "control", "action": "end"}))
        while (msg := json.loads(await ws.recv()))["type"] != "control":
            pass
        assert msg["action"] == "ended"
        assert (msg["packets"], msg["duplicates"], msg["gaps"]) == (1, 1, 1)


async def test_bad_header_gets_error_and_1007(server: Server) -> None:
    async with connect(
        url(server),
        additional_headers={"Authorization": f"Bearer {token()}"},
        subprotocols=["asr-protocol-v1"],
    ) as ws:  # type: ignore[list-item]
        await ws.recv()
        await ws.send(json.dumps({"type": "audio", "seq": 0, "data_length": 99999}))
        error = json.loads(await ws.recv())
        assert error["type"] == "error" and error["code"] == "bad-length"
        await ws.wait_closed()
        assert ws.close_code == 1007
