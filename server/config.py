"""Server settings: a YAML file plus ``XIAOZHI_*`` environment overrides (pydantic-settings).

Every default works offline. Nested fields use ``__`` in environment variables, e.g.
``XIAOZHI_WEBSOCKET__PORT=9000`` or ``XIAOZHI_TTS__PROVIDER=espeak``. Precedence (highest first):
explicit arguments, environment, YAML file, defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODELS_DIR = REPO_ROOT / "models"


class WebSocketSettings(BaseModel):
    host: str = "0.0.0.0"
    port: int = Field(default=8000, ge=0, le=65535)
    """0 picks a free port (tests)."""
    path: str = "/xiaozhi/v1/"
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
    ping_interval_s: float | None = None
    """No server pings by default: boards ≤ v1.8.9 can corrupt frames when answering them."""


class AudioSettings(BaseModel):
    downlink_sample_rate_hz: Literal[8000, 12000, 16000, 24000, 48000] = 24000
    downlink_frame_duration_ms: Literal[20, 40, 60] = 60
    lead_in_silence_ms: int = Field(default=120, ge=0)
    """Silent audio sent right after ``tts start`` so the board does not lose the first syllable."""
    burst_frames: int = Field(default=3, ge=0, le=40)
    """Frames sent ahead of real time at the start of a reply."""
    max_ahead_frames: int = Field(default=8, ge=1, le=40)
    """Never more than this many frames ahead of playback (the board queues 40)."""


class VadSettings(BaseModel):
    provider: str = "silero"
    model_path: Path = DEFAULT_MODELS_DIR / "silero_vad.onnx"
    threshold: float = Field(default=0.5, gt=0, lt=1)
    endpoint_silence_ms: int = Field(default=400, ge=100, le=5000)
    """Silence after speech that ends an utterance (auto/realtime)."""
    complete_silence_ms: int = Field(default=200, ge=50, le=5000)
    """Shorter silence that is enough once the words so far are a complete command the dialogue
    understands (grammar phrase); set it to ``endpoint_silence_ms`` to always wait the full one."""
    min_speech_ms: int = Field(default=150, ge=0)
    max_utterance_s: float = Field(default=15.0, gt=0)


class SherpaAsrSettings(BaseModel):
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


class AsrSettings(BaseModel):
    provider: str = "pocketsphinx"
    mode: Literal["grammar", "lm"] = "grammar"
    """``grammar``: commands the dialogue knows, recognised exactly; ``lm``: free text."""
    pool_size: int | None = Field(default=None, ge=1)
    """Decoders shared by all sessions, created on demand and held only while someone speaks.
    None: 8 in grammar mode (about 29 MiB each), 2 in LM mode (about 92 MiB each)."""
    language: str = "en-US"
    sherpa: SherpaAsrSettings = Field(default_factory=SherpaAsrSettings)

    @property
    def decoder_pool_size(self) -> int:
        """``pool_size``, or its default for the mode."""
        if self.pool_size is not None:
            return self.pool_size
        return 8 if self.mode == "grammar" else 2


class OpenAISettings(BaseModel):
    base_url: str = "http://127.0.0.1:11434/v1"
    """Any OpenAI-compatible endpoint (Ollama, vLLM, llama.cpp server, DeepSeek, Qwen ...)."""
    model: str = "qwen2.5:3b"
    api_key: SecretStr = SecretStr("")
    timeout_s: float = Field(default=15.0, gt=0)
    first_token_timeout_s: float = Field(default=8.0, gt=0)
    max_history_turns: int = Field(default=10, ge=0)
    system_prompt: str = (
        "You are Xiaozhi, a concise voice assistant. Answer in one or two short sentences. "
        "Use the device tools when the user asks to control something."
    )


class DialogueSettings(BaseModel):
    provider: str = "local"
    openai: OpenAISettings = Field(default_factory=OpenAISettings)
    assistant_name: str = "Xiaozhi"
    timezone_offset_min: int | None = None
    """Local time zone for time/date answers; None uses the server's."""
    tool_call_timeout_s: float = Field(default=10.0, gt=0, le=120)
    """Seconds a device tool call (MCP ``tools/call``) may take before the reply says it failed."""


class TtsSettings(BaseModel):
    provider: str = "flite"
    fallback: str = "flite"
    """Used when an online provider fails."""
    voice: str | None = None
    """Engine voice: flite voice name, espeak voice (``en-us``, ``cmn-latn-pinyin``), edge voice."""
    speed: float = Field(default=1.0, gt=0.25, le=4.0)
    sherpa_model_dir: Path | None = None


class OtaSettings(BaseModel):
    host: str = "0.0.0.0"
    port: int = Field(default=8003, ge=0, le=65535)
    path: str = "/xiaozhi/ota/"
    websocket_url: str | None = None
    """URL given to boards; None builds it from the request's Host and the WebSocket port/path."""
    websocket_token: str = ""
    websocket_version: Literal[1, 2, 3] = 1
    firmware_version: str | None = None
    """Numeric dotted version to offer (with ``firmware_url``); None omits ``firmware``."""
    firmware_url: str = ""
    timezone_offset_min: int | None = None
    activation: bool = False
    auto_bind: bool = False
    """Dev mode: bind a device automatically on its first /activate."""
    hmac_keys: dict[str, str] = Field(default_factory=dict)
    """serial number -> hex HMAC key, for boards that send ``Activation-Version: 2``."""
    db_path: Path = REPO_ROOT / "var" / "devices.sqlite3"

    @field_validator("firmware_version")
    @classmethod
    def _numeric_version(cls, value: str | None) -> str | None:
        if value is not None and not all(part.isdigit() for part in value.split(".")):
            raise ValueError(
                f"firmware_version must be purely numeric and dotted (e.g. 2.4.2), got {value!r}: "
                "a non-numeric version crashes the board"
            )
        return value


class Settings(BaseSettings):
    """All server settings. Load with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="XIAOZHI_", env_nested_delimiter="__", extra="forbid", yaml_file=None
    )

    websocket: WebSocketSettings = Field(default_factory=WebSocketSettings)
    audio: AudioSettings = Field(default_factory=AudioSettings)
    vad: VadSettings = Field(default_factory=VadSettings)
    asr: AsrSettings = Field(default_factory=AsrSettings)
    dialogue: DialogueSettings = Field(default_factory=DialogueSettings)
    tts: TtsSettings = Field(default_factory=TtsSettings)
    ota: OtaSettings = Field(default_factory=OtaSettings)
    executor_workers: int = Field(default=2, ge=1)
    """Threads for CPU-heavy work (ASR, VAD, TTS, Opus); bounded."""
    log_level: str = "INFO"

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


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from an optional YAML file, the environment and explicit overrides.

    Raises ``FileNotFoundError`` for a missing file and ``pydantic.ValidationError`` (with the
    offending field named) for a wrong one.
    """
    if config_file is not None and not config_file.is_file():
        raise FileNotFoundError(f"config file not found: {config_file}")

    class _FileSettings(Settings):
        model_config = SettingsConfigDict(yaml_file=config_file)

    return _FileSettings(**overrides)
