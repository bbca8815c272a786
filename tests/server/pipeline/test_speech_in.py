"""SpeechIn with the real engines: silero VAD, pocketsphinx grammar mode, 60 ms Opus.

Packets "arrive" in real time (packet i at (i + 1) × 60 ms), so audio time and clock agree.
"""

from __future__ import annotations

import numpy as np
import pytest

from device.audio.sources import last_voiced, say
from protocol.opus import OpusEncoder
from server.config import AsrSettings, VadSettings
from server.pipeline.speech_in import (
    SETTLE_MS,
    SpeechIn,
    SpeechInResult,
    phrase_key,
    phrase_sets,
)
from server.providers import registry
from server.providers.base import AsrCapabilities, AsrProvider, Transcript, VadProvider

PHRASES = [
    "turn on the kitchen lamp",
    "turn off the kitchen lamp",
    "set the volume to thirty",
    "set the volume to thirty five",
    "set the volume to forty",
    "what time is it",
]
RATE = 16000


@pytest.fixture(scope="module")
def engines() -> tuple[VadProvider, AsrProvider]:
    vad = registry.VAD.create("silero", VadSettings())
    asr = registry.ASR.create("pocketsphinx", AsrSettings())
    return vad, asr


def silence(ms: int) -> np.ndarray:
    return np.zeros(RATE * ms // 1000, dtype=np.int16)


def spoken(text: str) -> np.ndarray:
    """flite speech without its own leading and trailing silence."""
    pcm = say(text)
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) >= 500)
    return pcm[loud[0] : loud[-1] + 1]


def run(
    engines: tuple[VadProvider, AsrProvider], pcm: np.ndarray, settings: VadSettings
) -> tuple[SpeechInResult, float]:
    """Stream ``pcm`` (+ trailing silence) until the utterance ends → (result, audio s at end)."""
    vad, asr = engines
    up = SpeechIn(vad, asr, settings)
    up.set_phrases(PHRASES)
    up.begin(endpointing=True)
    audio = np.concatenate([pcm, silence(1500)])
    encoder = OpusEncoder(RATE, 60, complexity=0, dtx=True)
    try:
        for i in range(len(audio) // 960):
            result = up.feed(encoder.encode(audio[i * 960 : (i + 1) * 960]), (i + 1) * 0.06)
            if result.final_text is not None:
                return result, (i + 1) * 0.06
    finally:
        up.close()
    raise AssertionError("the utterance never ended")


def test_phrase_key_ignores_case_spacing_and_punctuation() -> None:
    assert phrase_key("  Turn ON the lamp, please! ") == "turn on the lamp please"
    assert phrase_key("what's up?") == "what's up"


def test_phrase_sets_tell_complete_commands_and_leaves() -> None:
    sets = phrase_sets(tuple(PHRASES))
    assert sets.complete == {phrase_key(p) for p in PHRASES}
    # "thirty" is continued by "thirty five"; "thirty five" is "thirty" plus an optional word
    assert sets.leaves == {
        "turn on the kitchen lamp", "turn off the kitchen lamp", "set the volume to forty",
        "what time is it",
    }  # fmt: skip


def test_a_command_ending_in_an_optional_word_gets_no_leaf_shortcut(
    engines: tuple[VadProvider, AsrProvider],
) -> None:
    """The decoder hears a short word in the fall of the last one into silence ("thirty" →
    "thirty five"), and more silence undoes it: such a command waits the complete-command
    silence, as "thirty" does, not the leaf rule's."""

    def wait_after_speech(text: str, settings: VadSettings) -> float:
        """Seconds from the end of the spoken clip to the end of the utterance."""
        pcm = np.concatenate([silence(300), say(text)])
        result, at = run(engines, pcm, settings)
        assert result.final_text == text
        return at - len(pcm) / RATE

    optional = wait_after_speech("set the volume to thirty five", VadSettings())
    no_leaf = VadSettings(leaf_silence_ms=0)
    assert optional == wait_after_speech("set the volume to thirty five", no_leaf)
    # a leaf of about the same length still gets its shortcut
    assert wait_after_speech("set the volume to forty", VadSettings()) < optional - 0.12


def test_a_complete_command_is_answered_sooner(engines: tuple[VadProvider, AsrProvider]) -> None:
    pcm = np.concatenate([silence(300), say("turn on the kitchen lamp")])
    quick, quick_at = run(engines, pcm, VadSettings(complete_silence_ms=200, leaf_silence_ms=0))
    full, full_at = run(engines, pcm, VadSettings(complete_silence_ms=400, leaf_silence_ms=0))
    assert quick.final_text == full.final_text == "turn on the kitchen lamp"
    assert 0.12 <= full_at - quick_at <= 0.28  # 200 ms less silence, give or take a window


def test_a_pause_inside_a_command_does_not_end_it(
    engines: tuple[VadProvider, AsrProvider],
) -> None:
    pcm = np.concatenate(
        [silence(300), spoken("set the volume to"), silence(250), spoken("thirty five")]
    )
    result, _ = run(engines, pcm, VadSettings(complete_silence_ms=100))
    assert result.final_text == "set the volume to thirty five"


def test_speech_end_is_located_in_the_audio(engines: tuple[VadProvider, AsrProvider]) -> None:
    for text in ("what time is it", "turn off the kitchen lamp"):
        pcm = np.concatenate([silence(300), say(text)])
        sent_s = (last_voiced(pcm) // 960 + 1) * 0.06  # the packet holding the last voiced sample
        result, _ = run(engines, pcm, VadSettings())
        assert result.final_text == text
        assert result.speech_end_s is not None
        # the VAD's last speech window ends 100-200 ms after the speech; the estimate does not
        # (one packet later at most: Opus delays the decoded audio by a few ms)
        assert 0 <= result.speech_end_s - sent_s <= 0.061, (text, result.speech_end_s, sent_s)
        assert result.detected_s is not None


def test_a_leaf_command_ends_sooner_still(engines: tuple[VadProvider, AsrProvider]) -> None:
    pcm = np.concatenate([silence(300), say("turn on the kitchen lamp")])
    leaf, leaf_at = run(engines, pcm, VadSettings())
    plain, plain_at = run(engines, pcm, VadSettings(leaf_silence_ms=0))
    assert leaf.final_text == plain.final_text == "turn on the kitchen lamp"
    assert plain_at - leaf_at >= 0.12, (leaf_at, plain_at)  # no 200 ms on top of the VAD tail


def test_a_command_that_another_continues_is_not_cut_by_the_leaf_rule(
    engines: tuple[VadProvider, AsrProvider],
) -> None:
    pcm = np.concatenate(
        [silence(300), spoken("set the volume to thirty"), silence(150), spoken("five")]
    )
    result, _ = run(engines, pcm, VadSettings())
    assert result.final_text == "set the volume to thirty five"


def test_a_complete_command_is_stable_before_the_vad_hang_over_ends(
    engines: tuple[VadProvider, AsrProvider],
) -> None:
    """A complete command's partial is reported stable once the voice has been quiet for
    STABLE_QUIET_MS, while the VAD still says speech: for a command no phrase continues the
    endpoint comes at the VAD's first non-speech window, which was too late for a speculative
    answer to start before it."""
    from iot.things.board import demo_board
    from server.providers.dialogue.local import LocalDialogue

    vad, asr = engines
    up = SpeechIn(vad, asr, VadSettings())
    up.set_phrases(LocalDialogue().phrases(demo_board().mcp_tools()))
    up.begin(endpointing=True)
    speech = spoken("turn on the lamp")
    audio = np.concatenate([silence(300), speech, silence(1500)])
    noise = np.random.default_rng(7).normal(0, 60, len(audio))  # a room, about -50 dBFS
    audio = np.clip(audio + noise, -32768, 32767).astype(np.int16)
    voice_end_s = (len(silence(300)) + len(speech)) / RATE
    encoder = OpusEncoder(RATE, 60, complexity=0, dtx=True)
    stable_at = final_at = None
    for i in range(len(audio) // 960):
        result = up.feed(encoder.encode(audio[i * 960 : (i + 1) * 960]), (i + 1) * 0.06)
        if result.stable_text and stable_at is None:
            assert result.stable_text == "turn on the lamp"
            stable_at = (i + 1) * 0.06
        if result.final_text is not None:
            final_at = (i + 1) * 0.06
            assert result.final_text == "turn on the lamp"
            break
    up.close()
    assert stable_at is not None and final_at is not None
    assert stable_at < final_at  # reported before the endpoint, so the answer can start
    assert stable_at - voice_end_s >= 0.1  # but never before the voice has been quiet


class TimedAsr:
    """Its partial is "set the volume to" until ``complete_at_s`` of audio, then the complete
    command "set the volume to forty"; the final is the partial."""

    name = "timed"
    sample_rate_hz = RATE
    capabilities = AsrCapabilities(grammar=True, free_text=False, partials=True, streaming=True)

    def __init__(self, complete_at_s: float) -> None:
        self.complete_at_s = complete_at_s
        self.samples = 0

    def create_stream(self, phrases: object = None) -> TimedAsr:
        self.samples = 0
        return self

    def accept(self, pcm: np.ndarray) -> Transcript | None:
        self.samples += len(pcm)
        return Transcript(self.text(), is_final=False)

    def text(self) -> str:
        done = self.samples / RATE >= self.complete_at_s
        return "set the volume to forty" if done else "set the volume to"

    def finish(self) -> Transcript:
        return Transcript(self.text(), is_final=True)

    def close(self) -> None:
        pass


def test_a_command_decided_in_the_silence_waits_the_full_silence(
    engines: tuple[VadProvider, AsrProvider],
) -> None:
    """A partial that became complete well after the voice stopped was decided on silence (the
    decoder heard "thirty" become "thirteen" where the audio fell to digital zero): no
    shortcut for it. One that was complete while the voice was on gets it."""
    vad, _ = engines
    pcm = np.concatenate([silence(300), say("set the volume to forty")])
    voice_end_s = last_voiced(pcm) / RATE
    settings = VadSettings(leaf_silence_ms=0)
    in_voice, in_voice_at = run((vad, TimedAsr(voice_end_s - 0.2)), pcm, settings)
    late = voice_end_s + (SETTLE_MS + 60) / 1000
    in_silence, in_silence_at = run((vad, TimedAsr(late)), pcm, settings)
    assert in_voice.final_text == in_silence.final_text == "set the volume to forty"
    full = settings.endpoint_silence_ms - settings.complete_silence_ms
    assert in_silence_at - in_voice_at == pytest.approx(full / 1000, abs=0.061)
