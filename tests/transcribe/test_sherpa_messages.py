"""sherpa protocol messages from transcriber updates; float32 → int16."""

from __future__ import annotations

import numpy as np

from server.transcribe.sherpa_endpoint import _SegmentState, float32_to_pcm
from server.transcribe.transcriber import PartialText, SegmentFinal


def test_partials_then_final_then_next_segment() -> None:
    state = _SegmentState()
    assert state.messages([]) == [{"text": "", "segment": 0}]
    assert state.messages([PartialText(0, "turn on", 500)]) == [{"text": "turn on", "segment": 0}]
    final = SegmentFinal(0, "turn on the lamp", 0, 1500)
    assert state.messages([PartialText(0, "turn on the", 900), final]) == [
        {"text": "turn on the lamp", "segment": 0, "is_final": True},
        {"text": "", "segment": 1},
    ]
    assert state.messages([PartialText(1, "what", 1900)]) == [{"text": "what", "segment": 1}]
    end = SegmentFinal(1, "what time", 1500, 2500)
    assert state.messages([end], trailing=False) == [
        {"text": "what time", "segment": 1, "is_final": True}
    ]
    assert state.sent_final


def test_float32_conversion_clips_and_drops_nan() -> None:
    data = np.array([0.5, -1.5, np.nan, 1.0], dtype="<f4").tobytes()
    assert float32_to_pcm(data).tolist() == [16383, -32767, 0, 32767]
