"""The swarm: N devices in one process, per-turn metrics from the true end of speech."""

from __future__ import annotations

import pytest

from conformance.device import DeviceCheckServer, HarnessConfig
from device.arguments import RunSettings
from device.selfcheck import voiced_utterance
from device.swarm import SwarmConfig, run_swarm, summarize


def test_summary_over_turns() -> None:
    turns = [
        {"endpoint_ms": float(i), "first_audio_ms": None, "abort_ms": None, "stale_frames": 1}
        for i in range(1, 5)
    ]
    s = summarize([{"error": None, "turns": turns}, {"error": "x", "turns": []}])
    assert (s["devices"], s["turns"], s["errors"], s["stale_frames"]) == (2, 4, 1, 4)
    assert s["endpoint_ms"]["p50"] == 2.5 and s["first_audio_ms"]["n"] == 0


@pytest.mark.e2e
async def test_swarm_of_three_measures_every_turn() -> None:
    server = DeviceCheckServer(HarnessConfig(respond_after_frames=20, burst_frames=5, paced_s=0.2))
    await server.start()
    settings = RunSettings(
        ws_url=server.ws_url, token="t", protocol_version=2, turns=2, think_s=0.1
    )
    config = SwarmConfig(settings, n=3, ramp_s=0.2, utterances=[voiced_utterance(0.8)])
    try:
        report = await run_swarm(config)
    finally:
        await server.stop()
    summary = report["summary"]
    assert summary["devices"] == 3 and summary["errors"] == 0, report
    assert summary["turns"] == 6
    fa = summary["first_audio_ms"]
    assert fa["n"] == 6 and fa["p50"] is not None
    # the server answers after 20 uplink frames = 1.2 s of audio, i.e. ~0.2 s after the vowel's end
    for dev in report["devices"]:
        for turn in dev["turns"]:
            assert turn["stt"] == "conformance check"
            assert turn["endpoint_ms"] is not None and -100 < turn["endpoint_ms"] < 2000
    print(summary)
    assert len({d["mac"] for d in report["devices"]}) == 3
    assert len(server.conns) == 3
    assert all(dict(c.headers)["Protocol-Version"] == "2" for c in server.conns)
