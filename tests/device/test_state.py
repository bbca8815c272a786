"""The device state machine against the firmware's whitelist (protocol.md §5.2), every pair."""

from __future__ import annotations

import logging

import pytest

from device.state import ALLOWED_TRANSITIONS, DeviceStateMachine, is_allowed
from protocol.enums import DeviceState as S

# §5.2, typed in by hand from the table (independent of device.state).
TABLE = {
    "unknown": "starting",
    "starting": "wifi_configuring activating",
    "wifi_configuring": "activating audio_testing",
    "audio_testing": "wifi_configuring",
    "activating": "upgrading idle wifi_configuring",
    "upgrading": "idle activating",
    "idle": "connecting listening speaking activating upgrading wifi_configuring",
    "connecting": "idle listening",
    "listening": "speaking idle",
    "speaking": "listening idle",
    "fatal_error": "",
}
PAIRS = [(a, b) for a in S for b in S if a != b]


def test_table_covers_all_eleven_states() -> None:
    assert len(S) == 11
    assert set(ALLOWED_TRANSITIONS) == set(S)


@pytest.mark.parametrize(("old", "new"), PAIRS, ids=[f"{a.value}->{b.value}" for a, b in PAIRS])
def test_every_pair_follows_the_whitelist(old: S, new: S, caplog: pytest.LogCaptureFixture) -> None:
    expected = new.value in TABLE[old.value].split()
    assert is_allowed(old, new) is expected
    sm = DeviceStateMachine(old)
    seen: list[tuple[S, S]] = []
    sm.add_listener(lambda a, b: seen.append((a, b)))
    with caplog.at_level(logging.WARNING, logger="device.state"):
        assert sm.transition(new) is expected
    if expected:
        assert sm.state == new
        assert seen == [(old, new)]
        assert not caplog.records
    else:
        assert sm.state == old
        assert seen == []
        assert f"{old.value} -> {new.value}" in caplog.text


def test_boot_path_and_conversation() -> None:
    sm = DeviceStateMachine()
    for state in (S.STARTING, S.ACTIVATING, S.IDLE, S.CONNECTING, S.LISTENING, S.SPEAKING, S.IDLE):
        assert sm.transition(state)
    assert not sm.transition(S.STARTING)
    assert sm.state == S.IDLE


def test_tts_start_while_connecting_is_refused() -> None:
    sm = DeviceStateMachine(S.CONNECTING)
    assert not sm.transition(S.SPEAKING)
    assert sm.state == S.CONNECTING
