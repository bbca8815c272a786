"""What a user sees: --json lines with stable field names, the live panel in words."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
from rich.console import Console

from device.audio.sources import Utterance
from device.events import (
    AbortSent,
    ChannelOpened,
    RunFinished,
    StateChanged,
    SttReceived,
    ThingChanged,
    TtsStateChanged,
    TurnEnded,
    UtteranceStarted,
)
from device.scenario import wait_until
from device.view import JsonView, RichView, meter_bars
from tests.device.conftest import ScriptedServer
from tests.timing import scaled


def test_json_lines_keep_the_field_names_scripts_parse() -> None:
    out = io.StringIO()
    view = JsonView(out)
    view(StateChanged("idle", "connecting"))
    view(TurnEnded(0, 512.3, 700.0, None, 0, "turn on the lamp"))
    view(ThingChanged("lamp", "power", True))
    view(RunFinished(ok=False, code="reply-timeout", error="timed out"))
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert all(isinstance(line.pop("t"), float) for line in lines)
    assert lines == [
        {"event": "state", "old": "idle", "new": "connecting"},
        {
            "event": "turn",
            "turn": 0,
            "endpoint_ms": 512.3,
            "first_audio_ms": 700.0,
            "abort_ms": None,
            "stale_frames": 0,
            "stt": "turn on the lamp",
        },
        {"event": "thing", "thing": "lamp", "property": "power", "value": True},
        {
            "event": "result",
            "ok": False,
            "code": "reply-timeout",
            "error": "timed out",
            "replies": [],
        },
    ]


def panel_text(view: RichView) -> str:
    console = Console(width=100, record=True, file=io.StringIO())
    console.print(view.render())
    return console.export_text()


def test_panel_events_are_words_not_dicts_and_the_transcript_is_partial_until_tts() -> None:
    view = RichView(live=False)
    view(ChannelOpened("S1", 24000))
    view(AbortSent(None))
    view(UtteranceStarted("turn on the lamp"))
    view(SttReceived("turn on"))
    text = panel_text(view)
    assert "channel opened: session 'S1', downlink 24000 Hz" in text
    assert "abort sent (button)" in text
    assert "{" not in text and "'event'" not in text
    assert "turn on the lamp" in text  # what the simulated user is saying
    assert "turn on …" in text  # partial: the server is still listening
    view(SttReceived("turn on the lamp"))
    view(TtsStateChanged("start"))
    text = panel_text(view)
    assert "turn on the lamp …" not in text and "tts start" in text
    view(StateChanged("speaking", "listening"))  # after the reply: still the final transcript
    assert "turn on the lamp …" not in panel_text(view)


async def test_level_meter_moves_while_the_simulator_speaks(
    server: ScriptedServer, make_device: Any
) -> None:
    ctl = await make_device()
    await ctl.click()
    assert meter_bars(ctl.mic_level_dbfs) == 0  # silence between utterances
    tone = (np.sin(np.arange(16000) / 3) * 8000).astype(np.int16)
    ctl.source.play(Utterance(tone, len(tone), "tone"))
    await wait_until(lambda: meter_bars(ctl.mic_level_dbfs) >= 20, scaled(5), "the meter")
