"""Each speaker's cepstral mean: what one board says never changes how another is heard.

Real pocketsphinx on real flite speech through Opus, one pooled decoder shared by everyone (so
every stream gets the decoder another speaker used last)."""

from __future__ import annotations

import numpy as np
import pytest

from device.audio.sources import say
from iot.things.board import demo_board
from protocol.audio import Pcm
from server.config import AsrSettings
from server.providers.asr.pocketsphinx import PocketsphinxAsr
from server.providers.asr.speaker_means import SpeakerMeans
from server.providers.dialogue.local import LocalDialogue
from tests.server.providers.asr.speech import opus_round_trip

COMMAND = "set the screen brightness to fifty"
FOLLOW_UP = "turn on the kitchen lamp"
HEARD_AFTER_OTHERS = [
    COMMAND,
    "set the volume to thirty",
    "turn off the kitchen lamp",
    "what time is it",
]


@pytest.fixture(scope="module")
def phrases() -> list[str]:
    """The demo board's command phrases (the grammar a real session uses)."""
    return LocalDialogue().phrases(demo_board().mcp_tools())


@pytest.fixture(scope="module")
def chunks() -> dict[str, list[Pcm]]:
    rng = np.random.default_rng(3)
    noise = rng.normal(0, 8000, 2 * 16000).clip(-32768, 32767).astype(np.int16)
    far = (say("tell me a story about a robot", "espeak") * 0.03).astype(np.int16)
    return {
        **{text: opus_round_trip(say(text, "flite")) for text in {FOLLOW_UP, *HEARD_AFTER_OTHERS}},
        "noise": opus_round_trip(noise),  # a noisy room, a fuzzing client
        "far": opus_round_trip(far),  # a board far from its speaker (-30 dB)
    }


def one_decoder() -> PocketsphinxAsr:
    return PocketsphinxAsr(AsrSettings(pool_size=1, spare_decoders=0))


def hear(asr: PocketsphinxAsr, chunks: list[Pcm], phrases: list[str], speaker: str | None) -> str:
    stream = asr.create_speaker_stream(phrases, speaker)
    try:
        for chunk in chunks:
            stream.accept(chunk)
        return stream.finish().text
    finally:
        stream.close()


@pytest.mark.parametrize(
    ("other", "times", "speaker"),
    [
        ("far", 5, "aa:bb:cc:00:00:01"),
        ("far", 5, None),  # an anonymous client (Wyoming) is isolated too
        pytest.param("noise", 10, "aa:bb:cc:00:00:01", marks=pytest.mark.e2e),  # 40 s of noise
    ],
)
def test_another_board_on_the_same_decoder_changes_nothing(
    phrases: list[str], chunks: dict[str, list[Pcm]], other: str, times: int, speaker: str | None
) -> None:
    """Before, the decoder kept the other board's mean: after a quiet board "fifty" was heard
    as "fifteen" and "thirty" as "thirty two"; after a noisy one "what time is it" as "what
    can" (measured)."""
    asr, heard = one_decoder(), []
    for text in HEARD_AFTER_OTHERS:
        for _ in range(times):
            hear(asr, chunks[other], phrases, "aa:bb:cc:00:00:99")
        heard.append(hear(asr, chunks[text], phrases, speaker))
    assert heard == HEARD_AFTER_OTHERS


def test_a_speaker_carries_its_own_mean_whoever_used_the_decoder_between(
    phrases: list[str], chunks: dict[str, list[Pcm]]
) -> None:
    """The same two turns of one board adapt it exactly the same with or without another
    board's noise on the shared decoder in between."""
    board = "aa:bb:cc:00:00:01"
    alone, shared = one_decoder(), one_decoder()
    assert alone.means.start(board) == alone.means.initial
    for asr, noisy in ((alone, False), (shared, True)):
        assert hear(asr, chunks[COMMAND], phrases, board) == COMMAND
        if noisy:
            hear(asr, chunks["noise"], phrases, "aa:bb:cc:00:00:99")
        assert hear(asr, chunks[FOLLOW_UP], phrases, board) == FOLLOW_UP
    assert alone.means.start(board) != alone.means.initial, "the board's channel was learnt"
    assert shared.means.start(board) == alone.means.start(board)
    assert shared.means.start(None) == shared.means.initial, "anonymous speakers keep nothing"


def test_speaker_means_are_bounded_least_recently_heard_first() -> None:
    means = SpeakerMeans("40,3,-1", capacity=2)
    means.remember("a", "41,0,0")
    means.remember("b", "42,0,0")
    assert means.start("a") == "41,0,0"  # "a" heard more recently than "b" now
    means.remember("c", "43,0,0")
    assert len(means) == 2
    assert means.start("b") == "40,3,-1", "forgotten: starts from the initial mean again"
    assert (means.start("a"), means.start("c")) == ("41,0,0", "43,0,0")
    means.remember(None, "99,0,0")
    assert means.start(None) == "40,3,-1"
