"""String enumerations of the wire: device states, listen modes/states, TTS states, emotions."""

from __future__ import annotations

from enum import StrEnum


class DeviceState(StrEnum):
    """The firmware's 11 device states, by log name (enum order = the firmware's number)."""

    UNKNOWN = "unknown"
    STARTING = "starting"
    WIFI_CONFIGURING = "wifi_configuring"
    IDLE = "idle"
    CONNECTING = "connecting"
    LISTENING = "listening"
    SPEAKING = "speaking"
    UPGRADING = "upgrading"
    ACTIVATING = "activating"
    AUDIO_TESTING = "audio_testing"
    FATAL_ERROR = "fatal_error"

    @property
    def number(self) -> int:
        """The firmware's numeric value of this state (0–10)."""
        return list(DeviceState).index(self)


class ListenMode(StrEnum):
    """``listen start`` modes: who decides the end of speech."""

    AUTO = "auto"
    """Device streams until the server starts TTS; the server detects end of speech."""
    MANUAL = "manual"
    """Push-to-talk: the device sends ``listen stop``."""
    REALTIME = "realtime"
    """Full duplex: the mic keeps streaming while the server speaks."""


class ListenState(StrEnum):
    START = "start"
    STOP = "stop"
    DETECT = "detect"


class TtsState(StrEnum):
    START = "start"
    STOP = "stop"
    SENTENCE_START = "sentence_start"


class AbortReason(StrEnum):
    WAKE_WORD_DETECTED = "wake_word_detected"


class Emotion(StrEnum):
    """Emotion names the board firmware has faces for (unknown names show ``neutral``)."""

    NEUTRAL = "neutral"
    HAPPY = "happy"
    LAUGHING = "laughing"
    FUNNY = "funny"
    LOVING = "loving"
    EMBARRASSED = "embarrassed"
    CONFIDENT = "confident"
    DELICIOUS = "delicious"
    SAD = "sad"
    CRYING = "crying"
    SLEEPY = "sleepy"
    SILLY = "silly"
    ANGRY = "angry"
    SURPRISED = "surprised"
    SHOCKED = "shocked"
    THINKING = "thinking"
    WINKING = "winking"
    RELAXED = "relaxed"
    CONFUSED = "confused"
