"""The one exception tree of the device simulator; every error says what to change.

::

    DeviceError                       code                    exit
    ├── UsageError                    usage                   2   bad or contradictory options
    ├── StateFileError                state-file              1   identity file unusable
    ├── AudioSourceError              audio-unavailable       1   missing file, TTS engine, codec
    │   └── NoSoundDevice             no-sound-device         1   no microphone / speaker found
    ├── WakeWordUnavailable           wake-word-unavailable   1
    ├── OtaError                      ota-failed              1
    │   ├── OtaUnreachable            ota-unreachable         1   connection refused, bad host
    │   ├── OtaNotFound               ota-not-found           1   HTTP 404: wrong path
    │   ├── OtaWrongPort              ota-wrong-port          1   the URL is the WebSocket port
    │   └── OtaBadAnswer              ota-bad-answer          1   an answer that aborts a board
    ├── ChannelError                  channel-failed          1   WebSocket connect/handshake/hello
    ├── ScenarioError                 scenario-failed         1   a scripted step did not happen
    │   ├── ReplyTimeout              reply-timeout           1   the server went quiet mid-turn
    │   └── ChannelLost               channel-lost            1   the server hung up mid-turn
    └── MqttNotImplemented            mqtt-not-implemented    3   the OTA answer chose MQTT+UDP

``code`` (a :class:`DeviceErrorCode`) is stable: it is the ``code`` of the ``--json`` result event
and the swarm's error summary. ``exit_status`` is what ``xiaozhi-device`` exits with.
"""

from __future__ import annotations

from enum import StrEnum


class DeviceErrorCode(StrEnum):
    DEVICE_ERROR = "device-error"
    USAGE = "usage"
    STATE_FILE = "state-file"
    AUDIO_UNAVAILABLE = "audio-unavailable"
    NO_SOUND_DEVICE = "no-sound-device"
    WAKE_WORD_UNAVAILABLE = "wake-word-unavailable"
    OTA_FAILED = "ota-failed"
    OTA_UNREACHABLE = "ota-unreachable"
    OTA_NOT_FOUND = "ota-not-found"
    OTA_WRONG_PORT = "ota-wrong-port"
    OTA_BAD_ANSWER = "ota-bad-answer"
    CHANNEL_FAILED = "channel-failed"
    SCENARIO_FAILED = "scenario-failed"
    REPLY_TIMEOUT = "reply-timeout"
    CHANNEL_LOST = "channel-lost"
    MQTT_NOT_IMPLEMENTED = "mqtt-not-implemented"


class DeviceError(Exception):
    """Base of every error the simulator reports to its user."""

    code: DeviceErrorCode = DeviceErrorCode.DEVICE_ERROR
    exit_status: int = 1


class UsageError(DeviceError):
    """Options that cannot work together (e.g. ``--legacy-iot`` with firmware 2.4.2)."""

    code = DeviceErrorCode.USAGE
    exit_status = 2


class StateFileError(DeviceError, ValueError):
    """The identity (NVS) file cannot be read or written."""

    code = DeviceErrorCode.STATE_FILE


class AudioSourceError(DeviceError):
    """A source cannot produce audio (missing file, missing TTS engine, no sound card)."""

    code = DeviceErrorCode.AUDIO_UNAVAILABLE


class NoSoundDevice(AudioSourceError):
    """No input (or output) device: the message names ``--wav``/``--say``/``--output``."""

    code = DeviceErrorCode.NO_SOUND_DEVICE


class WakeWordUnavailable(DeviceError):
    """pocketsphinx is missing or rejected the phrase (words not in its dictionary)."""

    code = DeviceErrorCode.WAKE_WORD_UNAVAILABLE


class OtaError(DeviceError):
    """The OTA/config check cannot succeed as configured."""

    code = DeviceErrorCode.OTA_FAILED


class OtaUnreachable(OtaError):
    """Nothing listens at the OTA URL (connection refused, unknown host)."""

    code = DeviceErrorCode.OTA_UNREACHABLE


class OtaNotFound(OtaError):
    """The server answered 404: the port is right but the path is not."""

    code = DeviceErrorCode.OTA_NOT_FOUND


class OtaWrongPort(OtaError):
    """The OTA URL points at a WebSocket port (empty reply to a POST, 426 Upgrade Required)."""

    code = DeviceErrorCode.OTA_WRONG_PORT


class OtaBadAnswer(OtaError):
    """The answer would make a real board abort (e.g. a non-numeric firmware version)."""

    code = DeviceErrorCode.OTA_BAD_ANSWER


class ChannelError(DeviceError):
    """The WebSocket audio channel could not be opened (refused, 404, no server hello)."""

    code = DeviceErrorCode.CHANNEL_FAILED


class ScenarioError(DeviceError):
    """A scripted step did not happen (no answer from the server, channel failed)."""

    code = DeviceErrorCode.SCENARIO_FAILED


class ReplyTimeout(ScenarioError):
    """The server sent nothing for the inactivity timeout while a reply was due."""

    code = DeviceErrorCode.REPLY_TIMEOUT


class ChannelLost(ScenarioError):
    """The server closed the channel (or asked for a reboot) before the reply was complete."""

    code = DeviceErrorCode.CHANNEL_LOST


class MqttNotImplemented(DeviceError):
    """The OTA answer chose MQTT+UDP, which this simulator does not implement."""

    code = DeviceErrorCode.MQTT_NOT_IMPLEMENTED
    exit_status = 3
