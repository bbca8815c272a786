"""Sequenced sessions over real sockets: heartbeat, idle timeout, resume window, resume by
another user (refused: a new session), and admission (503) on ``/ws/asr``."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from server.app import Providers, Server
from server.transcribe.jwt_auth import encode_hs256
from tests.e2e.conftest import running_server
from tests.timing import scaled
from tests.transcribe.waiting import eventually

pytestmark = pytest.mark.asyncio(loop_scope="session")
KEY = "timers-key"


def token(sub: str = "alice") -> str:
    return encode_hs256({"sub": sub, "exp": int(time.time() + 600)}, KEY)


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def server(
    providers: Providers, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Server]:
    transcribe: dict[str, Any] = {
        "jwt_keys": [KEY],
        "heartbeat_s": 0.2,
        "idle_timeout_s": 0.8,
        "resume_window_s": 2.0,
        "max_active_streams": 2,
    }
    async with running_server(providers, tmp_path_factory.mktemp("t"), transcribe=transcribe) as s:
        yield s


def open_asr(server: Server, sub: str = "alice", query: str = "") -> Any:
    return connect(
        f"ws://127.0.0.1:{server.ws_port}/ws/asr{query}",
        additional_headers={"Authorization": f"Bearer {token(sub)}"},
        subprotocols=["asr-protocol-v1"],  # type: ignore[list-item]
        open_timeout=scaled(5),
    )


async def next_json(ws: ClientConnection) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), scaled(5)))
    return data


async def test_heartbeat_then_idle_close_then_resume_window(server: Server) -> None:
    async with open_asr(server) as ws:
        greeting = await next_json(ws)
        assert greeting["heartbeat_s"] == 0.2
        assert await next_json(ws) == {"type": "heartbeat"}
        await ws.send(json.dumps({"type": "heartbeat"}))  # the client's keeps the socket open
        await ws.wait_closed()
        assert ws.close_code == 4408 and ws.close_reason == "idle timeout"
    session = greeting["session"]
    async with open_asr(server, query=f"?session={session}&last_seq=-1") as ws:
        again = await next_json(ws)
        assert again["resumed"] and again["session"] == session
    sessions = server.transcribe.sessions.sessions
    assert await eventually(lambda: session not in sessions), "expired after the resume window"
    async with open_asr(server, query=f"?session={session}&last_seq=-1") as ws:
        late = await next_json(ws)
        assert not late["resumed"] and late["session"] != session


async def drained(server: Server) -> None:
    """Sessions of earlier tests wait out their resume window (2 s) before freeing a slot."""
    assert await eventually(lambda: server.transcribe.admission.active == 0, 15)


async def test_resume_needs_the_same_user(server: Server) -> None:
    await drained(server)
    async with open_asr(server, "alice") as ws:
        mine = (await next_json(ws))["session"]
        async with open_asr(server, "mallory", f"?session={mine}&last_seq=-1") as other:
            theirs = await next_json(other)
            assert not theirs["resumed"] and theirs["session"] != mine


async def test_admission_503_on_ws_asr(server: Server) -> None:
    await drained(server)
    async with open_asr(server) as a, open_asr(server) as b:
        await next_json(a)
        await next_json(b)
        with pytest.raises(InvalidStatus) as refused:
            async with open_asr(server):
                pass
        assert refused.value.response.status_code == 503


async def test_sherpa_endpoint_needs_the_port_token_when_the_port_has_tokens(
    providers: Providers, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp = tmp_path_factory.mktemp("tokens")
    async with running_server(providers, tmp, websocket={"tokens": ["port-secret"]}) as srv:
        url = f"ws://127.0.0.1:{srv.ws_port}/"
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url):
                pass
        assert refused.value.response.status_code == 401
        async with connect(url + "?token=port-secret") as ws:
            await ws.send("Done")
            assert json.loads(await ws.recv()) == {"text": "", "segment": 0}


async def test_silent_sherpa_socket_is_closed_idle(server: Server) -> None:
    await drained(server)
    async with connect(f"ws://127.0.0.1:{server.ws_port}/", open_timeout=scaled(5)) as ws:
        await ws.wait_closed()
        assert ws.close_code == 4408 and ws.close_reason == "idle timeout"
