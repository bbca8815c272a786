"""A real simulated board (iot.things) as the device behind the dialogue's tool calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from iot.thing import ToolError
from iot.things.board import Board, demo_board
from iot.tools import ToolOutcome
from server.providers.base import DialogueContext, DialogueEvent, EmotionChosen, TextDelta


@dataclass
class Device:
    board: Board
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        self.calls.append((name, arguments))
        try:
            return ToolOutcome(await self.board.call_tool(name, arguments))
        except ToolError as exc:
            return ToolOutcome(str(exc), is_error=True)

    def context(self) -> DialogueContext:
        return DialogueContext(tools=self.board.mcp_tools(), call_tool=self.call_tool)


@pytest.fixture
def device() -> Device:
    return Device(demo_board())


def answer_of(events: list[DialogueEvent]) -> tuple[str, str]:
    """(emotion, full text); the emotion must come first, then text deltas only."""
    assert isinstance(events[0], EmotionChosen)
    assert all(isinstance(e, TextDelta) for e in events[1:])
    assert len(events) >= 2
    return events[0].emotion, "".join(e.text for e in events[1:] if isinstance(e, TextDelta))
