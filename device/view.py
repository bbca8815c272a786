"""How a running device shows itself: one JSON event per line (``--json``) or a live rich panel."""

from __future__ import annotations

import json
import sys
from collections import deque
from typing import Any, TextIO

from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text


class JsonView:
    """Prints every event as one compact JSON line (for scripts)."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def __call__(self, event: dict[str, Any]) -> None:
        self.out.write(json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n")
        self.out.flush()

    def tick(self, level_dbfs: float) -> None:
        pass

    def close(self) -> None:
        pass


class RichView:
    """A live terminal panel: state, last stt/sentence, emotion, level meter, thing changes."""

    def __init__(self) -> None:
        self.state = "unknown"
        self.fields: dict[str, str] = {"stt": "", "sentence": "", "emotion": "neutral"}
        self.things: deque[str] = deque(maxlen=6)
        self.log: deque[str] = deque(maxlen=6)
        self.level_dbfs = -120.0
        self._live = Live(self._render(), refresh_per_second=10, transient=False)
        self._live.start()

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "state":
            self.state = str(event["new"])
        elif kind == "stt":
            self.fields["stt"] = str(event["text"])
        elif kind == "sentence_start":
            self.fields["sentence"] = str(event["text"])
        elif kind == "llm":
            self.fields["emotion"] = str(event["emotion"])
        elif kind == "thing":
            self.things.append(json.dumps({k: v for k, v in event.items() if k != "t"}))
        elif kind in ("turn", "alert", "abort", "channel", "reboot"):
            self.log.append(
                json.dumps({k: v for k, v in event.items() if k not in ("t", "event")})
                if kind != "channel"
                else f"channel {event}"
            )
        self._live.update(self._render())

    def tick(self, level_dbfs: float) -> None:
        self.level_dbfs = level_dbfs
        self._live.update(self._render())

    def _render(self) -> Panel:
        table = Table.grid(padding=(0, 2))
        table.add_row("state", Text(self.state, style="bold cyan"))
        table.add_row("you said", self.fields["stt"])
        table.add_row("assistant", self.fields["sentence"])
        table.add_row("emotion", self.fields["emotion"])
        bars = max(0, min(40, int((self.level_dbfs + 60) * 40 / 60)))
        table.add_row("level", Text("█" * bars + "·" * (40 - bars), style="green"))
        parts: list[Any] = [
            table,
            Text("things:", style="bold"),
            *[Text(t) for t in self.things],
            Text("events:", style="bold"),
            *[Text(t) for t in self.log],
        ]
        return Panel(Group(*parts), title="xiaozhi device")

    def close(self) -> None:
        self._live.stop()
