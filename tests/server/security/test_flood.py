"""The uplink gate: real-time audio passes, a flood is dropped then closed, text floods close."""

from __future__ import annotations

from server.security.flood import UplinkGate, Verdict
from server.security.settings import LimitSettings

LIMITS = LimitSettings(
    max_audio_frames_per_s=50,
    audio_burst_frames=20,
    max_audio_frame_bytes=1000,
    max_messages_per_s=10,
    message_burst=5,
    flood_close_after_frames=100,
)


def test_real_time_audio_never_drops() -> None:
    gate = UplinkGate(LIMITS)
    verdicts = {gate.audio(200, k * 0.060) for k in range(2000)}  # 2 minutes at 60 ms
    assert verdicts == {Verdict.PASS}


def test_a_burst_passes_then_faster_than_the_rate_is_dropped_and_counted() -> None:
    gate = UplinkGate(LIMITS)
    first = [gate.audio(200, 0.0) for _ in range(30)]  # 30 frames at once
    assert first.count(Verdict.PASS) == 20 and first[20:] == [Verdict.DROP_FLOOD] * 10
    assert gate.flood_dropped == 10
    # 1 s later the bucket has refilled 50 frames' worth, up to the burst of 20
    assert [gate.audio(200, 1.0) for _ in range(21)].count(Verdict.PASS) == 20


def test_a_sustained_flood_is_closed() -> None:
    gate = UplinkGate(LIMITS)
    verdicts = [gate.audio(200, k * 0.001) for k in range(1000)]  # 1000 frames/s
    assert Verdict.CLOSE in verdicts
    assert verdicts.index(Verdict.CLOSE) < 200
    assert "faster than real time" in gate.close_reason


def test_an_oversized_binary_frame_is_dropped_not_queued() -> None:
    gate = UplinkGate(LIMITS)
    assert gate.audio(1001, 0.0) is Verdict.DROP_OVERSIZED
    assert gate.audio(1000, 0.0) is Verdict.PASS
    assert gate.oversized_dropped == 1


def test_text_past_its_burst_and_rate_closes() -> None:
    gate = UplinkGate(LIMITS)
    assert [gate.text(0.0) for _ in range(5)] == [Verdict.PASS] * 5
    assert gate.text(0.0) is Verdict.CLOSE and gate.close_reason == "too many messages"
    calm = UplinkGate(LIMITS)
    assert {calm.text(k * 0.2) for k in range(100)} == {Verdict.PASS}
