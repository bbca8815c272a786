"""The firmware's device state machine (protocol.md §5.1–5.2), as a pure object.

Only the whitelisted transitions are taken; anything else is refused with a warning and
:meth:`DeviceStateMachine.transition` returns ``False`` (the firmware's ``DeviceStateMachine``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

from protocol.enums import DeviceState

logger = logging.getLogger(__name__)

S = DeviceState
ALLOWED_TRANSITIONS: Final[dict[DeviceState, frozenset[DeviceState]]] = {
    S.UNKNOWN: frozenset({S.STARTING}),
    S.STARTING: frozenset({S.WIFI_CONFIGURING, S.ACTIVATING}),
    S.WIFI_CONFIGURING: frozenset({S.ACTIVATING, S.AUDIO_TESTING}),
    S.AUDIO_TESTING: frozenset({S.WIFI_CONFIGURING}),
    S.ACTIVATING: frozenset({S.UPGRADING, S.IDLE, S.WIFI_CONFIGURING}),
    S.UPGRADING: frozenset({S.IDLE, S.ACTIVATING}),
    S.IDLE: frozenset(
        {S.CONNECTING, S.LISTENING, S.SPEAKING, S.ACTIVATING, S.UPGRADING, S.WIFI_CONFIGURING}
    ),
    S.CONNECTING: frozenset({S.IDLE, S.LISTENING}),
    S.LISTENING: frozenset({S.SPEAKING, S.IDLE}),
    S.SPEAKING: frozenset({S.LISTENING, S.IDLE}),
    S.FATAL_ERROR: frozenset(),
}
"""From-state → the states the firmware allows next."""

StateListener = Callable[[DeviceState, DeviceState], None]
"""Called as ``listener(old, new)`` after every accepted transition."""


def is_allowed(old: DeviceState, new: DeviceState) -> bool:
    """Whether the firmware allows ``old`` → ``new``."""
    return new in ALLOWED_TRANSITIONS[old]


class DeviceStateMachine:
    """Current state plus the whitelist; listeners hear every accepted change."""

    def __init__(self, initial: DeviceState = DeviceState.UNKNOWN) -> None:
        self._state = initial
        self._listeners: list[StateListener] = []

    @property
    def state(self) -> DeviceState:
        return self._state

    def add_listener(self, listener: StateListener) -> None:
        self._listeners.append(listener)

    def transition(self, new: DeviceState) -> bool:
        """Move to ``new`` if allowed; same state is a no-op returning ``True``."""
        old = self._state
        if new == old:
            return True
        if not is_allowed(old, new):
            logger.warning("invalid state transition %s -> %s refused", old.value, new.value)
            return False
        self._state = new
        logger.info("state %s -> %s", old.value, new.value)
        for listener in list(self._listeners):
            listener(old, new)
        return True
