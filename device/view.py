"""How a running device shows itself: one JSON event per line (``--json``) or a live rich panel."""

from __future__ import annotations

import json
import sys
from collections import deque
from typing import Any, Protocol, TextIO

from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from device.events import (
    DeviceEvent,
    EmotionChanged,
    SentenceStarted,
    SpeechEnded,
    StateChanged,
    SttReceived,
    ThingChanged,
    TtsStateChanged,
    UtteranceStarted,
    event_json,
)

METER_WIDTH = 40
METER_FLOOR_DBFS = -60.0


class View(Protocol):
    def __call__(self, event: DeviceEvent) -> None: ...

    def tick(self, level_dbfs: float) -> None: ...

    def close(self) -> None: ...


class JsonView:
    """Prints every event as one compact JSON line (for scripts)."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def __call__(self, event: DeviceEvent) -> None:
        line = json.dumps(event_json(event), ensure_ascii=False, separators=(",", ":"))
        self.out.write(line + "\n")
        self.out.flush()

    def tick(self, level_dbfs: float) -> None:
        pass

    def close(self) -> None:
        pass


def meter_bars(level_dbfs: float) -> int:
    """How many of the meter's cells a level lights (−60 dBFS → 0, 0 dBFS → all)."""
    span = -METER_FLOOR_DBFS
    return max(0, min(METER_WIDTH, int((level_dbfs - METER_FLOOR_DBFS) * METER_WIDTH / span)))


class RichView:
    """A live terminal panel: state, what you say and what the server heard (partial while it
    is still listening), the assistant's sentence, emotion, a level meter of the audio sent or
    played, thing changes and the last events in words."""

    def __init__(self, *, live: bool = True) -> None:
        self.state = "unknown"
        self.saying = ""
        self.heard = ""
        self.heard_final = False
        self.sentence = ""
        self.emotion = "neutral"
        self.things: deque[str] = deque(maxlen=6)
        self.log: deque[str] = deque(maxlen=6)
        self.level_dbfs = -120.0
        self._live = Live(self.render(), refresh_per_second=10, transient=False) if live else None
        if self._live is not None:
            self._live.start()

    def __call__(self, event: DeviceEvent) -> None:
        if isinstance(event, StateChanged):
            self.state = event.new
        elif isinstance(event, UtteranceStarted):
            self.saying, self.heard, self.heard_final = event.text, "", False
        elif isinstance(event, SpeechEnded):
            pass
        elif isinstance(event, SttReceived):
            self.heard = event.text  # each stt replaces the line: partial until tts starts
            self.heard_final = False
        elif isinstance(event, TtsStateChanged):
            if event.state == "start":
                self.heard_final = True
            if event.state != "sentence_start":
                self.log.append(event.describe())
        elif isinstance(event, SentenceStarted):
            self.sentence = event.text
        elif isinstance(event, EmotionChanged):
            self.emotion = event.emotion
        elif isinstance(event, ThingChanged):
            self.things.append(event.describe())
        else:
            self.log.append(event.describe())
        self._refresh()

    def tick(self, level_dbfs: float) -> None:
        self.level_dbfs = level_dbfs
        self._refresh()

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self.render())

    def render(self) -> Panel:
        table = Table.grid(padding=(0, 2))
        table.add_row("state", Text(self.state, style="bold cyan"))
        table.add_row("you say", self.saying)
        heard = Text(self.heard, style="bold" if self.heard_final else "italic")
        if self.heard and not self.heard_final:
            heard.append(" …", style="dim")
        table.add_row("server heard", heard)
        table.add_row("assistant", self.sentence)
        table.add_row("emotion", self.emotion)
        bars = meter_bars(self.level_dbfs)
        meter = Text("█" * bars + "·" * (METER_WIDTH - bars), style="green")
        table.add_row("level", meter)
        parts: list[Any] = [
            table,
            Text("things:", style="bold"),
            *[Text(t) for t in self.things],
            Text("events:", style="bold"),
            *[Text(t) for t in self.log],
        ]
        return Panel(Group(*parts), title="xiaozhi device")

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
