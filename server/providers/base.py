"""The small interfaces every provider implements (streaming first).

PCM is int16 mono numpy arrays (:data:`protocol.audio.Pcm`); rates in Hz, durations in ms.
Providers are created once per server and shared by all sessions; per-utterance state lives in
the stream objects they hand out. CPU-heavy calls are made from the server's bounded executor
(the sync methods below) or are ``async`` and offload themselves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from iot.tools import ToolCaller, ToolOutcome
from protocol.audio import Pcm
from protocol.mcp import Tool
from server.errors import ProviderError, ProviderUnavailable

__all__ = ["ProviderError", "ProviderUnavailable", "ToolCaller", "ToolOutcome"]


# ----------------------------------------------------------------------------- VAD


@dataclass(frozen=True, slots=True)
class AsrCapabilities:
    """What an ASR provider can do; checked against the dialogue at start-up."""

    grammar: bool = False
    """``create_stream(phrases)`` restricts recognition to the phrases."""
    free_text: bool = True
    """Recognises open speech (not only the phrases)."""
    partials: bool = True
    """Returns partial transcripts while audio streams in."""
    streaming: bool = True
    """Decodes while the user speaks (False: all the work happens in ``finish``)."""
    languages: frozenset[str] = frozenset({"en"})
    """Languages it understands (``en``, ``zh``…)."""


@dataclass(frozen=True, slots=True)
class DialogueCapabilities:
    free_text: bool = False
    """Answers arbitrary questions (an LLM), not only the phrases it lists."""
    languages: frozenset[str] = frozenset({"en"})


@dataclass(frozen=True, slots=True)
class TtsCapabilities:
    languages: frozenset[str] = frozenset({"en"})
    sample_rate_hz: int = 16000
    """Native output rate (Hz)."""
    streaming: bool = False
    """Has ``synthesize_stream`` (:class:`StreamingTtsProvider`): audio of a sentence is
    delivered while it is produced (a network voice), so it can play before synthesis ends."""
    loads_model: bool = False
    """Loads a model on this machine at first use (seconds): the server synthesises one short
    sentence per language at start. Network voices are never warmed up (it would cost a
    request, and money, at every start)."""


class VadStream(Protocol):
    """Per-session voice activity detector: feed 16 kHz PCM, get speech probabilities."""

    def accept(self, pcm: Pcm) -> list[bool]:
        """Feed PCM; returns one speech/non-speech decision per internal window (in order)."""
        ...

    @property
    def window_ms(self) -> float:
        """Duration of one decision window in ms."""
        ...

    def reset(self) -> None: ...


class VadProvider(Protocol):
    name: str

    def create_stream(self) -> VadStream: ...


# ----------------------------------------------------------------------------- ASR


@dataclass(frozen=True, slots=True)
class Alternative:
    """One N-best hypothesis with its confidence (0..1)."""

    text: str
    confidence: float


@dataclass(frozen=True, slots=True)
class Transcript:
    """What a recogniser heard. Engines fill what they know; the rest stays at its default."""

    text: str
    is_final: bool
    confidence: float | None = None
    """0..1, the engine's belief that ``text`` is what was said (None: unknown)."""
    rejected: bool = False
    """The engine heard speech but judged it not a usable transcript (out of grammar, garbage):
    ``text`` is then what it made of it, for the ``stt`` message and logs, never to act on."""
    language: str | None = None
    """Detected language (``en``, ``zh``…), when the engine tells."""
    alternatives: tuple[Alternative, ...] = ()
    """N-best list, best first (may be empty)."""


class AsrStream(Protocol):
    """One utterance of streaming recognition at 16 kHz. Blocking calls: run in the executor."""

    def accept(self, pcm: Pcm) -> Transcript | None:
        """Feed PCM; returns a partial transcript when the hypothesis changed."""
        ...

    def finish(self) -> Transcript:
        """End of utterance: the final transcript (may be empty text)."""
        ...

    def close(self) -> None:
        """Return pooled resources; safe to call twice."""
        ...


class AwaitableAsrStream(AsrStream, Protocol):
    """An ASR stream whose end is a network round trip (the ``openai`` and ``wyoming``
    recognisers): ``finish_async`` waits for it on the event loop instead of holding an executor
    thread for the whole upload (``finish`` blocks one thread per ending utterance)."""

    async def finish_async(self) -> Transcript:
        """As :meth:`AsrStream.finish`, awaited; call ``close`` afterwards as usual."""
        ...


class AsrProvider(Protocol):
    name: str
    sample_rate_hz: int
    capabilities: AsrCapabilities

    def create_stream(self, phrases: Sequence[str] | None = None) -> AsrStream:
        """A stream for one utterance; ``phrases`` restricts recognition to them (grammar mode)."""
        ...


@runtime_checkable
class SpeakerAdaptiveAsr(Protocol):
    """An ASR provider that adapts to each speaker's channel (microphone, room) between
    utterances (pocketsphinx's cepstral mean), so what one speaker said never changes how
    another is heard."""

    def create_speaker_stream(
        self, phrases: Sequence[str] | None, speaker: str | None
    ) -> AsrStream:
        """As ``create_stream``, adapted to ``speaker`` (a board's device id, a session id;
        None: anonymous, no adaptation carried)."""
        ...


def open_asr_stream(
    asr: AsrProvider, phrases: Sequence[str] | None, speaker: str | None = None
) -> AsrStream:
    """A stream of ``asr`` for one utterance of ``speaker`` (ignored by providers that do not
    adapt to speakers)."""
    if speaker is not None and isinstance(asr, SpeakerAdaptiveAsr):
        return asr.create_speaker_stream(phrases, speaker)
    return asr.create_stream(phrases)


# ----------------------------------------------------------------------------- dialogue


@dataclass
class DialogueContext:
    """What a dialogue provider may see and do in one session."""

    tools: Sequence[Tool] = ()
    """The device's tools (MCP ``tools/list`` or converted legacy IoT descriptors)."""
    call_tool: ToolCaller | None = None
    """Calls a device tool through the session's router (MCP or legacy IoT)."""
    history: list[dict[str, Any]] = field(default_factory=list)
    """Bounded chat history (OpenAI message dicts), kept by the session."""
    language: str = "en-US"
    device_id: str = ""
    prepare: Callable[[str], None] | None = None
    """Tells the session a sentence the answer will likely start with (a tool call's
    confirmation, said only if the call succeeds), so its audio is synthesised while the call
    runs; preparing never speaks it (None: nobody prepares)."""


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the spoken answer (the session splits it into sentences)."""

    text: str


@dataclass(frozen=True, slots=True)
class EmotionChosen:
    emotion: str


DialogueEvent = TextDelta | EmotionChosen


class DialogueProvider(Protocol):
    name: str
    capabilities: DialogueCapabilities

    def phrases(self, tools: Sequence[Tool]) -> list[str]:
        """Every sentence this provider understands with these tools (feeds the ASR grammar);
        empty when it understands free text."""
        ...

    def respond(self, utterance: str, context: DialogueContext) -> AsyncIterator[DialogueEvent]:
        """Stream the answer. Must end (answer or apology) rather than hang or raise on failure."""
        ...


# ----------------------------------------------------------------------------- TTS


@dataclass(frozen=True, slots=True)
class SpeechAudio:
    pcm: Pcm
    sample_rate_hz: int


class TtsProvider(Protocol):
    name: str
    capabilities: TtsCapabilities

    async def synthesize(self, text: str, *, language: str | None = None) -> SpeechAudio:
        """Speech for one sentence, at the engine's native rate (the session resamples).
        Raises :class:`ProviderError` on failure."""
        ...


class StreamingTtsProvider(TtsProvider, Protocol):
    """A TTS provider whose audio for one sentence arrives in pieces (an HTTP or Wyoming voice).

    ``synthesize`` still returns the whole sentence; ``synthesize_stream`` yields it as it comes.
    """

    def synthesize_stream(
        self, text: str, *, language: str | None = None
    ) -> AsyncIterator[SpeechAudio]:
        """Speech for one sentence in order, all pieces at the same native rate. Every piece but
        the last holds a whole number of 60 ms frames at that rate (so each can be resampled and
        Opus-encoded on its own); the first arrives as soon as the engine sends audio. Raises
        :class:`ProviderError` before the first piece on failure (retried where that helps);
        a failure after it raises too and the caller keeps what it already played."""
        ...
