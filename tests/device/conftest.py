"""A tiny scripted WebSocket server and a device factory for controller tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from device.audio.player import Player
from device.audio.sinks import NullSink
from device.audio.sources import ScriptedSource
from device.controller import DeviceController
from device.identity import DeviceIdentity
from protocol.opus import OpusEncoder

SERVER_HELLO = (
    '{"type":"hello","transport":"websocket","session_id":"S1",'
    '"audio_params":{"format":"opus","sample_rate":24000,"channels":1,"frame_duration":60}}'
)


@dataclass
class Conn:
    ws: ServerConnection
    headers: list[tuple[str, str]]
    texts: list[str] = field(default_factory=list)
    binaries: list[bytes] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    close_frame_from_device: bool | None = None


class ScriptedServer:
    """Answers hellos (``hello`` may be set to None/other text), records everything."""

    def __init__(self) -> None:
        self.conns: list[Conn] = []
        self.hello: str | None = SERVER_HELLO
        self.before_hello: list[str] = []
        self.after_hello: list[str] = []
        self.url = ""
        self.changed = asyncio.Event()
        self._encoder = OpusEncoder(24000, 60)

    async def handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        conn = Conn(ws, list(ws.request.headers.raw_items()))
        self.conns.append(conn)
        try:
            async for msg in ws:
                if isinstance(msg, bytes):
                    conn.binaries.append(msg)
                else:
                    conn.texts.append(msg)
                    if json.loads(msg).get("type") == "hello":
                        for text in self.before_hello:
                            await ws.send(text)
                        if self.hello is not None:
                            await ws.send(self.hello)
                        for text in self.after_hello:
                            await ws.send(text)
                self.changed.set()
        except ConnectionClosed:
            pass
        finally:
            conn.close_frame_from_device = ws.protocol.close_rcvd is not None
            conn.closed.set()
            self.changed.set()

    @property
    def last(self) -> Conn:
        return self.conns[-1]

    def frame(self) -> bytes:
        t = np.arange(1440)
        return self._encoder.encode((np.sin(t / 4) * 5000).astype(np.int16))

    async def send(self, data: str | bytes, conn: Conn | None = None) -> None:
        await (conn or self.last).ws.send(data)

    async def wait(self, pred: Callable[[], bool], timeout_s: float = 5.0) -> None:
        async with asyncio.timeout(timeout_s):
            while not pred():
                self.changed.clear()
                if pred():
                    return
                await self.changed.wait()

    def device_texts(self, conn: Conn | None = None) -> list[str]:
        return (conn or self.last).texts


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    srv = ScriptedServer()
    async with serve(srv.handler, "127.0.0.1", 0, ping_interval=None) as ws_server:
        port = next(iter(ws_server.sockets)).getsockname()[1]
        srv.url = f"ws://127.0.0.1:{port}/xiaozhi/v1/"
        yield srv


DeviceFactory = Callable[..., DeviceController]


@pytest.fixture
async def make_device(server: ScriptedServer) -> AsyncIterator[Callable[..., Any]]:
    made: list[DeviceController] = []

    async def factory(**kw: Any) -> DeviceController:
        identity = DeviceIdentity(
            mac="a0:b7:65:12:34:56",
            uuid="6f1c2c1e-1d1b-4b8e-9a52-0c4d0a8c1f00",
            firmware_version=kw.pop("firmware", "2.4.2"),
        )
        identity.websocket.update({"url": server.url, "token": kw.pop("token", "tok")})
        realtime = kw.pop("realtime_playback", False)
        ctl = DeviceController(
            identity, source=ScriptedSource(), player=Player(NullSink(), realtime=realtime), **kw
        )
        await ctl.boot()
        await ctl.start()
        made.append(ctl)
        return ctl

    yield factory
    for ctl in made:
        await ctl.close()
