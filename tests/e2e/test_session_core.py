"""What the session core promises, seen by a board over a real socket.

* ``tts stop`` comes when the board has *played* the reply, not when its last frame was written:
  a client that drops whatever is still queued at ``tts stop`` (py-xiaozhi does) loses nothing.
* A board that announces MCP and never answers ``initialize`` is answered at once anyway.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio

from protocol.audio import Pcm
from protocol.enums import ListenMode
from server.app import Providers, Server
from tests.e2e.conftest import device, is_msg, running_server
from tests.e2e.firmware_client import FirmwareClient, Received
from tests.timing import scaled

pytestmark = pytest.mark.asyncio(loop_scope="session")
FRAME_S = 0.060


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def server(
    providers: Providers, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Server]:
    async with running_server(providers, tmp_path_factory.mktemp("core")) as srv:
        yield srv


def unplayed_at_stop_ms(events: list[Received]) -> tuple[float, int]:
    """Play the reply as a board does (from the first frame's arrival, one frame per 60 ms, a
    frame never before it arrived) and drop what is unplayed when ``tts stop`` arrives: returns
    (ms of audio lost, frames received)."""
    start = next(i for i, e in enumerate(events) if is_msg("tts", "start")(e))
    stop = next(e for e in events[start:] if is_msg("tts", "stop")(e))
    frames = [e for e in events[start:] if e.kind == "binary" and e.t <= stop.t]
    clock = 0.0
    for frame in frames:
        clock = max(clock, frame.t) + FRAME_S  # when this frame has finished playing
    return max(0.0, clock - stop.t) * 1000, len(frames)


async def ask(board: FirmwareClient, pcm: Pcm) -> None:
    await board.listen_start(ListenMode.AUTO)
    await board.speak(pcm)
    started = lambda: any(is_msg("tts", "start")(e) for e in board.events)  # noqa: E731
    await board.stream_silence(started, max_s=scaled(8))


@pytest.mark.parametrize("question", ["what time is it", "what can you do"])
async def test_a_client_that_drops_its_queue_at_tts_stop_plays_the_whole_reply(
    server: Server, speech: Callable[[str, str], Pcm], question: str
) -> None:
    async with device(server) as board:
        await ask(board, speech(question, "flite"))
        await board.wait_for(is_msg("tts", "stop"), scaled(30))
        lost_ms, frames = unplayed_at_stop_ms(board.events)
    print(f"{question!r}: {frames} frames, {lost_ms:.0f} ms unplayed at tts stop")
    assert frames > 10
    assert lost_ms == 0.0


async def test_a_board_that_never_answers_mcp_is_answered_when_it_speaks_at_once(
    server: Server, speech: Callable[[str, str], Pcm]
) -> None:
    board = await FirmwareClient.connect(server.ws_port)
    board.mcp = None  # it announces features.mcp but never answers initialize
    try:
        await board.hello()
        await ask(board, speech("what time is it", "flite"))  # right after listen start
        stt = await board.wait_for(is_msg("stt"), scaled(10))
        assert stt.data["text"] == "what time is it"
        await board.wait_for(is_msg("tts", "stop"), scaled(30))
        assert any(e.kind == "binary" for e in board.events)
    finally:
        await board.drop()
