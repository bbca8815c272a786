"""Speech out and barge-in, end to end: what a board receives for a spoken question."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import numpy as np
import pytest
import pytest_asyncio

from protocol.audio import Pcm, rms_dbfs
from protocol.binary import decode_frame
from protocol.enums import Emotion, ListenMode
from protocol.opus import OpusDecoder
from server.app import Providers, Server
from tests.e2e.conftest import device, is_msg, running_server
from tests.e2e.firmware_client import FirmwareClient, Received

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def server(
    providers: Providers, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Server]:
    async with running_server(providers, tmp_path_factory.mktemp("speech_out")) as srv:
        yield srv


def _index(events: list[Received], predicate: Callable[[Received], bool]) -> int:
    return next(i for i, e in enumerate(events) if predicate(e))


async def _ask(board: FirmwareClient, pcm: Pcm) -> float:
    """Speak in auto mode, streaming silence until ``tts start`` like a board; returns the time
    the last voiced frame was sent."""
    await board.listen_start(ListenMode.AUTO)
    sent = await board.speak(pcm)
    started = lambda: any(is_msg("tts", "start")(e) for e in board.events)  # noqa: E731
    await board.stream_silence(started, max_s=8)
    return sent.speech_end_t


async def test_answer_is_well_formed_paced_speech(
    server: Server, speech: Callable[[str, str], Pcm]
) -> None:
    async with device(server, version=2) as board:
        await _ask(board, speech("what time is it", "flite"))
        await board.wait_for(is_msg("tts", "stop"), 20)
        events = board.events

    types = [(e.data["type"], e.data.get("state")) for e in events if e.kind == "text"]
    types = [t for t in types if t[0] != "mcp"]
    assert types[:5] == [
        ("hello", None),
        ("stt", None),
        ("llm", None),
        ("tts", "start"),
        ("tts", "sentence_start"),
    ]
    assert types[-1] == ("tts", "stop")
    llm = next(e.data for e in events if is_msg("llm")(e))
    assert llm["emotion"] in {e.value for e in Emotion}
    start = _index(events, is_msg("tts", "start"))
    stop = _index(events, is_msg("tts", "stop"))
    frames = [e for e in events if e.kind == "binary"]
    assert frames and all(start < events.index(f) < stop for f in frames)

    decoder = OpusDecoder(24000, 60)
    pcm = [decoder.decode(decode_frame(f.data, 2).payload) for f in frames]
    assert {len(p) for p in pcm} == {1440}, "every packet must be exactly 60 ms at 24 kHz"
    audio = np.concatenate(pcm)
    assert 0.8 < len(audio) / 24000 < 15
    assert rms_dbfs(audio) > -40, "the answer must be audible speech, not silence"

    # Pacing: after the initial burst, frame k arrives within 10 ms of its 60 ms slot.
    burst = server.settings.audio.burst_frames
    times = np.array([f.t for f in frames[burst + 1 :]])
    assert len(times) >= 10
    slots = times[0] + 0.06 * np.arange(len(times))
    on_time = np.abs(times - slots) <= 0.010
    assert on_time.mean() >= 0.95, f"late frames: {np.round((times - slots)[~on_time] * 1000)}"


async def test_abort_stops_audio_at_once_and_next_turn_works(
    server: Server, speech: Callable[[str, str], Pcm]
) -> None:
    async with device(server) as board:
        await _ask(board, speech("tell me a story", "flite"))
        await board.wait_for(lambda r: r.kind == "binary", 10)
        await asyncio.sleep(0.6)
        assert not any(is_msg("tts", "stop")(e) for e in board.events), "answer too short"
        mark = len(board.events)
        await board.abort()
        sent_at = asyncio.get_running_loop().time()
        stop = await board.wait_for(is_msg("tts", "stop"), 2, start=mark)
        assert stop.t - sent_at < 0.1
        await asyncio.sleep(0.5)
        after = board.events[board.events.index(stop) + 1 :]
        assert not [e for e in after if e.kind == "binary"], "frames after tts stop"
        assert not [e for e in after if is_msg("tts")(e)]

        mark = len(board.events)
        await board.listen_start(ListenMode.AUTO)
        await board.speak(speech("what time is it", "flite"))
        stt = await board.wait_for(is_msg("stt"), 10, start=mark)
        assert stt.data["text"] == "what time is it"
        await board.wait_for(is_msg("tts", "stop"), 20, start=mark)


async def test_wake_word_during_answer_barges_in(
    server: Server, speech: Callable[[str, str], Pcm]
) -> None:
    """abort(wake_word_detected) + listen detect + listen start: old turn stops, new one runs."""
    async with device(server) as board:
        await _ask(board, speech("tell me a story", "flite"))
        await board.wait_for(lambda r: r.kind == "binary", 10)
        mark = len(board.events)
        await board.abort("wake_word_detected")
        await board.listen_detect("hey computer")
        await board.listen_start(ListenMode.AUTO)
        stop = await board.wait_for(is_msg("tts", "stop"), 2, start=mark)
        await board.speak(speech("what time is it", "flite"))
        stt = await board.wait_for(is_msg("stt"), 10, start=mark)
        assert stt.data["text"] == "what time is it"
        between = board.events[board.events.index(stop) + 1 : board.events.index(stt)]
        assert not [e for e in between if e.kind == "binary"]


async def test_realtime_mode_user_speech_interrupts(
    server: Server, speech: Callable[[str, str], Pcm]
) -> None:
    """Realtime: the mic keeps streaming; sustained user speech cancels the answer and is
    itself transcribed as the next command."""
    async with device(server) as board:
        await board.listen_start(ListenMode.REALTIME)
        await board.speak(speech("tell me a story", "flite"))
        await board.wait_for(lambda r: r.kind == "binary", 10)
        mark = len(board.events)
        await board.speak(speech("what time is it", "espeak"), lead_s=0.5)
        stop = await board.wait_for(is_msg("tts", "stop"), 5, start=mark)
        stt = await board.wait_for(is_msg("stt"), 10, start=mark)
        assert stt.data["text"] == "what time is it"
        assert board.events.index(stop) < board.events.index(stt)
