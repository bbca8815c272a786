"""The load generator's shortcuts: one encode per distinct uplink frame for all boards, downlink
packets counted (their length read from the header) instead of decoded; its CPU measured."""

from __future__ import annotations

import numpy as np
import pytest

import device.audio.player as player_module
import device.controller as controller_module
from bench import loadgen
from bench.loadgen import ClientCpu, CountingDecoder, SharedUplinkEncoder, lean_boards
from protocol.errors import CorruptAudio
from protocol.opus import OpusDecoder, OpusEncoder


def frames(seed: int, n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(960 * n) / 16000
    pcm = (np.sin(2 * np.pi * 220 * t) * 8000 + rng.normal(0, 500, t.size)).astype(np.int16)
    return [pcm[i * 960 : (i + 1) * 960] for i in range(n)]


SILENCE = np.zeros(960, np.int16)


def test_boards_saying_the_same_utterance_share_its_packets() -> None:
    with lean_boards() as stats:
        speech = frames(1, 10)
        script = [SILENCE] * 3 + speech + [SILENCE] * 12
        a = SharedUplinkEncoder(16000, 60, complexity=0, dtx=True)
        b = SharedUplinkEncoder(16000, 60, complexity=0, dtx=True)
        first = [a.encode(f) for f in script]
        second = [b.encode(f) for f in [SILENCE] * 5 + script[3:]]
    assert second[5:] == first[3:]  # the utterance and the silence after it: the same packets
    assert first[:3] == second[:3] and first[13] != first[0]  # silence before ≠ after speech
    # a: 3 leading silences + 10 speech + 9 silences after (told apart up to REPEATS deep);
    # b: only its 4th and 5th leading silences are new
    assert stats.encoded == 3 + 10 + 9 + 2
    assert stats.reused == len(first) + len(second) - stats.encoded
    dec = OpusDecoder(16000, 60)
    assert all(len(dec.decode(p)) == 960 for p in second)  # real Opus for the server


def test_the_silence_after_speech_shrinks_as_a_board_encoder_would() -> None:
    own = OpusEncoder(16000, 60, complexity=0, dtx=True)
    script = frames(2, 8) + [SILENCE] * 12
    expected = [own.encode(f) for f in script]
    with lean_boards():
        shared = SharedUplinkEncoder(16000, 60, complexity=0, dtx=True)
        got = [shared.encode(f) for f in script]
    settled = 8 + loadgen.REPEATS + 1
    assert got[:settled] == expected[:settled]  # the first board encodes all it sends itself
    assert [len(p) for p in got] == [len(p) for p in expected]  # then comfort noise, repeated
    assert len(got[-1]) < len(got[8])  # DTX shrank the silence


def test_encoders_of_other_settings_do_not_share() -> None:
    with lean_boards() as stats:
        SharedUplinkEncoder(16000, 60, complexity=0).encode(SILENCE)
        SharedUplinkEncoder(16000, 60, complexity=5).encode(SILENCE)
    assert stats.encoded == 2


@pytest.mark.parametrize(("rate", "ms"), [(24000, 60), (24000, 20), (16000, 60)])
def test_counting_decoder_gives_silence_as_long_as_the_packet(rate: int, ms: int) -> None:
    enc = OpusEncoder(rate, ms)
    packet = enc.encode(np.zeros(rate * ms // 1000, np.int16))
    with lean_boards() as stats:
        out = CountingDecoder(rate, 60).decode(packet)
    assert len(out) == rate * ms // 1000 and not out.any()
    assert stats.not_decoded == 1
    with pytest.raises(CorruptAudio):
        CountingDecoder(rate, 60).decode(b"")


def test_lean_boards_patches_the_device_code_only_inside() -> None:
    real_enc, real_dec = controller_module.OpusEncoder, player_module.OpusDecoder
    with lean_boards() as stats:
        assert controller_module.OpusEncoder is SharedUplinkEncoder
        assert player_module.OpusDecoder is CountingDecoder
        assert stats.as_dict()["uplink_shared"] and not stats.as_dict()["downlink_decoded"]
    assert controller_module.OpusEncoder is real_enc and player_module.OpusDecoder is real_dec
    with lean_boards(downlink=False) as stats:
        assert player_module.OpusDecoder is real_dec
    assert stats.as_dict()["downlink_decoded"]


def test_a_name_gone_from_the_device_code_leaves_the_boards_as_they_are(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(controller_module, "OpusEncoder")
    with lean_boards() as stats:
        assert not hasattr(controller_module, "OpusEncoder")
    assert stats.active == {"uplink": False, "downlink": True}


def test_client_cpu_measures_this_process() -> None:
    with ClientCpu() as cpu:
        sum(i * i for i in range(300_000))
    figures = cpu.as_dict()
    assert figures["cpu_s"] is not None and figures["cpu_s"] >= 0
    assert loadgen.process_cpu_s() > 0
