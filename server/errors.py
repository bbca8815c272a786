"""The one exception tree and error-code list of the server package.

Codes are stable kebab-case strings: they label the ``xiaozhi_errors_total`` metric, appear in
log lines and decide the spoken apology. Protocol decoding errors keep the codes of
:mod:`protocol.errors`; this module adds the server's own::

    ServerError                          code
    ├── ProviderError                    provider-error     a provider failed (retryable or not)
    │   └── ProviderUnavailable          provider-unavailable  cannot start: the message says how
    └── ConfigError                      config-error       a setting is wrong (names the key)

:class:`ErrorCode` lists every code the server itself emits, so a dashboard can enumerate them.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Every error code the server emits besides :mod:`protocol.errors`'s."""

    PROVIDER_ERROR = "provider-error"
    PROVIDER_UNAVAILABLE = "provider-unavailable"
    CONFIG_ERROR = "config-error"
    ASR_BUSY = "asr-busy"
    """Every pooled decoder is in use (pocketsphinx)."""
    ASR_QUEUE_TIMEOUT = "asr-queue-timeout"
    """Whisper had not started on the utterance within ``asr.whisper.max_queue_wait_s``: the
    request was taken out of its queue (retryable; the user is told to ask again)."""
    ASR_FAILED = "asr-failed"
    ASR_UNREACHABLE = "asr-unreachable"
    ASR_TIMEOUT = "asr-timeout"
    TTS_UNREACHABLE = "tts-unreachable"
    DIALOGUE_FAILED = "dialogue-error"
    DIALOGUE_TIMEOUT = "dialogue-timeout"
    LLM_UNREACHABLE = "llm-unreachable"
    TTS_FAILED = "tts-engine-failed"
    TTS_TIMEOUT = "tts-timeout"
    TTS_EMPTY_TEXT = "tts-empty-text"
    TTS_EMPTY_OUTPUT = "tts-empty-output"
    TTS_BAD_OUTPUT = "tts-bad-output"
    TTS_TEXT_TOO_LONG = "tts-text-too-long"
    TOOL_FAILED = "tool-failed"
    TOOL_TIMEOUT = "tool-timeout"
    TURN_FAILED = "turn-failed"
    UPLINK_FAILED = "uplink-failed"
    UPLINK_QUEUE_FULL = "uplink-queue-full"
    INBOX_FULL = "inbox-full"
    NOT_LISTENING = "not-listening"
    EMPTY_FRAME = "empty"
    HELLO_TIMEOUT = "hello-timeout"
    UNSUPPORTED_VERSION = "unsupported-binary-version"


class ServerError(Exception):
    """Base of the server's own errors; ``code`` is an :class:`ErrorCode` value."""

    code: str = "server-error"


class ProviderError(ServerError):
    """A provider failed. ``retryable``: a second attempt may succeed (a busy pool, a timeout, a
    refused connection); :func:`server.providers.retry.with_retries` acts on it."""

    code: str = ErrorCode.PROVIDER_ERROR

    def __init__(self, message: str, *, code: str | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.retryable = retryable


class ProviderUnavailable(ProviderError):
    """A provider cannot start: missing model file, missing extra or system library. The message
    says how to fix it."""

    code: str = ErrorCode.PROVIDER_UNAVAILABLE


class ConfigError(ServerError):
    """The settings are wrong; the message names the key and how to fix it."""

    code: str = ErrorCode.CONFIG_ERROR
