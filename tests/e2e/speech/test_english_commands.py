"""English speech in, as a board sends it (Opus 16 kHz → silero VAD → two-pass ASR → local
dialogue): commands are carried out, questions outside the command set never are."""

from __future__ import annotations

import pytest

from bench.accuracy import evaluate
from bench.speech_corpus import ENGLISH_VOICES, IN_GRAMMAR, OUT_OF_GRAMMAR, speak
from server.providers.asr.twopass import TwoPassAsr
from server.providers.dialogue.local import LocalDialogue
from server.providers.vad.silero import SileroVad

pytestmark = pytest.mark.timeout(900)


def test_commands_over_five_voices_are_carried_out(
    twopass: TwoPassAsr, vad: SileroVad, dialogue: LocalDialogue
) -> None:
    """75 commands (15 × flite slt/rms/awb, espeak, Piper): ≥ 97 % do what was said."""
    correct = total = fast = 0
    errors: list[str] = []
    for engine, voice in ENGLISH_VOICES:
        tally = evaluate(twopass, vad, speak(IN_GRAMMAR, engine, voice), dialogue)
        correct, total, fast = (
            correct + tally.correct,
            total + tally.commands,
            fast + tally.fast_path,
        )
        errors += tally.errors
    assert total == 75
    assert correct / total >= 0.97, errors
    assert fast / total >= 0.8  # most commands take the grammar fast path (no Whisper)


@pytest.mark.parametrize(("engine", "voice"), [("piper", "joe"), ("flite", "slt")])
def test_questions_outside_the_commands_never_run_one(
    twopass: TwoPassAsr, vad: SileroVad, dialogue: LocalDialogue, engine: str, voice: str
) -> None:
    """32 questions per voice, several sharing words with commands ("what is the volume",
    "turn the lights purple in the garden"): ≤ 2 % false accepts (no tool call, no answer from
    the command set; the user hears "I can't help with that")."""
    tally = evaluate(twopass, vad, speak(OUT_OF_GRAMMAR, engine, voice), dialogue)
    assert tally.questions == 32
    assert tally.false_accepts / tally.questions <= 0.02, tally.errors
