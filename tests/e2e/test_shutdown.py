"""Graceful shutdown seen by boards: the reply in progress ends with ``tts stop``, every session
closes with 1001 "going away", new connections are refused, and stop() returns promptly."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from protocol.audio import Pcm
from protocol.enums import ListenMode
from server.app import Providers, Server
from tests.e2e.conftest import e2e_settings, is_msg
from tests.e2e.firmware_client import FirmwareClient
from tests.timing import scaled

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_stop_finishes_replies_within_the_grace_and_closes_with_1001(
    providers: Providers, tmp_path: Path, speech: Callable[[str, str], Pcm]
) -> None:
    server = Server(e2e_settings(tmp_path), providers=providers)
    await server.start()
    idle = await FirmwareClient.connect(server.ws_port)
    talking = await FirmwareClient.connect(server.ws_port)
    try:
        await idle.hello()
        await talking.hello()
        await talking.listen_start(ListenMode.AUTO)
        await talking.speak(speech("what can you do", "flite"))  # a long answer
        started = lambda: any(is_msg("tts", "start")(e) for e in talking.events)  # noqa: E731
        await talking.stream_silence(started, max_s=scaled(8))
        assert started()
        t0 = time.monotonic()
        await server.stop(grace_s=1.0)
        took = time.monotonic() - t0
        for board in (idle, talking):
            close = await board.wait_for(lambda r: r.kind == "close", scaled(5))
            assert close.data[0] == 1001
        stop = await talking.wait_for(is_msg("tts", "stop"), 1)
        assert stop.t <= close.t
        assert took < scaled(1.0 + 2.5), f"stop() took {took:.1f} s"
        with pytest.raises(OSError):
            await asyncio.wait_for(FirmwareClient.connect(server.ws_port), 2)
    finally:
        await idle.drop()
        await talking.drop()
