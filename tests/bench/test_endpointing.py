"""The endpointing benchmark's tally, on the real chain (silero, pocketsphinx, 60 ms Opus)."""

from __future__ import annotations

from bench.endpointing import evaluate
from bench.speech_corpus import Clip, speak
from iot.things.board import demo_board
from server.config import AsrSettings, VadSettings
from server.providers import registry
from server.providers.dialogue.local import LocalDialogue


def test_commands_are_counted_and_a_mishearing_is_reported() -> None:
    asr = registry.ASR.create("pocketsphinx", AsrSettings(language="en-US"))
    vad = registry.VAD.create("silero", VadSettings())
    clips = speak(["turn on the kitchen lamp", "what time is it"], "flite", "slt")
    # the audio of "turn on ..." labelled "turn off ...": what a mishearing looks like
    clips.append(Clip("turn off the kitchen lamp", "flite", "slt", clips[0].pcm))
    phrases = LocalDialogue().phrases(demo_board().mcp_tools())
    tally = evaluate(asr, vad, clips, phrases, offsets_ms=(0, 20))
    assert tally.commands == 6 and tally.wrong == 2
    assert tally.errors == {
        "flite:slt 'turn off the kitchen lamp' heard 'turn on the kitchen lamp'": [0, 20]
    }
    # every utterance ended on its own, after the voice and before the full silence ran out
    assert len(tally.waits_ms) == 6 and all(0 < w < 1000 for w in tally.waits_ms)
    row = tally.row("flite:slt")
    assert row["commands"] == 6 and row["wrong"] == 2 and row["wait_p95_ms"] is not None
