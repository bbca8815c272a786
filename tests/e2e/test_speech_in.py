"""Speech in, end to end: a firmware-like client streams real synthetic speech as Opus over a
real socket; the server's VAD/endpointer/ASR (grammar mode) must send the exact words back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from protocol.audio import Pcm
from protocol.enums import ListenMode
from server.app import Providers, Server
from tests.e2e.conftest import device, is_msg, running_server

pytestmark = pytest.mark.asyncio(loop_scope="session")

COMMANDS = ["what time is it", "turn on the kitchen lamp", "set the volume to thirty"]


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def server(
    providers: Providers, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Server]:
    async with running_server(providers, tmp_path_factory.mktemp("speech_in")) as srv:
        yield srv


@pytest.mark.parametrize("engine", ["flite", "espeak"])
@pytest.mark.parametrize("text", COMMANDS)
async def test_auto_mode_transcribes_exactly(
    server: Server, speech: Callable[[str, str], Pcm], engine: str, text: str
) -> None:
    async with device(server) as board:
        await board.listen_start(ListenMode.AUTO)
        await board.speak(speech(text, engine))
        stt = await board.wait_for(is_msg("stt"), 10)
        assert stt.data == {"type": "stt", "text": text}


@pytest.mark.parametrize("version", [2, 3])
async def test_manual_mode_ends_at_listen_stop(
    server: Server, speech: Callable[[str, str], Pcm], version: int
) -> None:
    async with device(server, version=version) as board:
        await board.listen_start(ListenMode.MANUAL)
        await board.speak(speech("what time is it", "flite"), tail_s=0.2)
        assert not [m for m in board.texts() if m["type"] == "stt"], "manual mode must wait"
        await board.listen_stop()
        stt = await board.wait_for(is_msg("stt"), 10)
        assert stt.data["text"] == "what time is it"


async def test_wake_word_pre_roll_is_not_transcribed(
    server: Server, speech: Callable[[str, str], Pcm]
) -> None:
    """The pre-roll burst (here: other words) before ``listen detect`` is never a command."""
    async with device(server, version=3) as board:
        for packet in board.encode(speech("tell me a story", "flite")):  # back-to-back burst
            await board.send_audio(packet)
        await board.listen_detect("hey computer")
        await board.listen_start(ListenMode.AUTO)
        await board.speak(speech("what time is it", "espeak"))
        stt = await board.wait_for(is_msg("stt"), 10)
        assert stt.data["text"] == "what time is it"


async def test_silence_and_noise_give_no_turn_but_keep_listening(
    server: Server, speech: Callable[[str, str], Pcm]
) -> None:
    """Auto mode: noise is not answered, and the user can speak right after it."""
    rng = np.random.default_rng(1)
    async with device(server) as board:
        await board.listen_start(ListenMode.AUTO)
        await board.speak((rng.normal(0, 60, 16000)).astype(np.int16), tail_s=0.5)
        await board.speak(speech("what time is it", "flite"))
        stt = await board.wait_for(is_msg("stt"), 10)
        assert stt.data["text"] == "what time is it"
        assert [m["type"] for m in board.texts()].count("stt") == 1


async def test_spoken_command_reaches_the_device_through_mcp(
    server: Server, speech: Callable[[str, str], Pcm]
) -> None:
    """Grammar from the board's own MCP tools; the answer calls the tool on the board."""
    async with device(server) as board:
        assert board.mcp is not None
        lamp = board.mcp.board.things["bedroom_lamp"]
        await board.listen_start(ListenMode.AUTO)
        await board.speak(speech("turn on the bedroom lamp", "espeak"))
        stt = await board.wait_for(is_msg("stt"), 10)
        assert stt.data["text"] == "turn on the bedroom lamp"
        await board.wait_for(is_msg("tts", "stop"), 20)
        assert lamp.get("power") is True


async def test_pcm_fixture_speech_is_real(
    speech: Callable[[str, str], Pcm], tmp_path: Path
) -> None:
    """Guard: the synthesised test speech has real content of plausible length (≥ 0.5 s)."""
    pcm = speech("what time is it", "espeak")
    assert len(pcm) > 8000 and int(np.abs(pcm).max()) > 3000


async def test_more_boards_talking_than_decoders_all_get_their_words(
    providers: Providers, speech: Callable[[str, str], Pcm], tmp_path: Path
) -> None:
    """One pocketsphinx decoder, three boards speaking at once: the waiting ones keep their
    audio and catch up as soon as the decoder is free (no 'busy' failure, no silence)."""
    from server.config import AsrSettings
    from server.providers.asr.pocketsphinx import PocketsphinxAsr

    one = Providers(
        providers.vad, PocketsphinxAsr(AsrSettings(pool_size=1)), providers.dialogue, providers.tts
    )
    async with (
        running_server(one, tmp_path) as srv,
        device(srv) as a,
        device(srv) as b,
        device(srv) as c,
    ):
        boards = list(zip([a, b, c], COMMANDS, strict=True))
        for board, _ in boards:
            await board.listen_start(ListenMode.AUTO)
        await asyncio.gather(*(board.speak(speech(text, "flite")) for board, text in boards))
        for board, text in boards:
            stt = await board.wait_for(is_msg("stt"), 10)
            assert stt.data["text"] == text


async def test_each_board_is_heard_with_its_own_channel_adaptation(
    providers: Providers, speech: Callable[[str, str], Pcm], tmp_path: Path
) -> None:
    """The server adapts pocketsphinx to each board by its Device-Id (kept across reconnects),
    never to whichever board used the shared decoder last."""
    from server.config import AsrSettings
    from server.providers.asr.pocketsphinx import PocketsphinxAsr

    asr = PocketsphinxAsr(AsrSettings(pool_size=1, spare_decoders=0))
    one = Providers(providers.vad, asr, providers.dialogue, providers.tts)
    talker, quiet = "a0:b7:65:00:00:01", "a0:b7:65:00:00:02"
    async with running_server(one, tmp_path) as srv:
        for text in ("what time is it", "turn on the kitchen lamp"):  # two sessions
            async with device(srv, device_id=talker) as board:
                await board.listen_start(ListenMode.AUTO)
                await board.speak(speech(text, "flite"))
                stt = await board.wait_for(is_msg("stt"), 10)
                assert stt.data["text"] == text
            if text == "what time is it":
                learnt = asr.means.start(talker)
                assert learnt != asr.means.initial
        again = asr.means.start(talker)
        assert again not in (learnt, asr.means.initial), "the second session updated it"
        assert asr.means.start(quiet) == asr.means.initial
