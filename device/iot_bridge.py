"""Wires the iot package's demo board into a device: MCP server or legacy IoT adapter.

Imports ``iot`` lazily so the device still runs (without tools) when it is unavailable.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from device.events import EventSink, ThingChanged
from device.identity import DeviceIdentity
from protocol.messages import IotCommands, encode_message

if TYPE_CHECKING:
    from device.controller import LegacyIot, McpHandler
    from iot.things import Board

logger = logging.getLogger(__name__)


class LegacyIotAdapter:
    """Legacy ``type:"iot"`` messages (§8) for a board, as the controller needs them."""

    def __init__(self, board: Board) -> None:
        self.board = board

    def descriptor_messages(self, session_id: str) -> list[str]:
        from iot.legacy import descriptors_messages

        return [encode_message(m) for m in descriptors_messages(self.board, session_id)]

    def state_message(self, session_id: str, *, delta: bool) -> str | None:
        from iot.legacy import states_message

        msg = states_message(self.board, session_id, delta=delta)
        return encode_message(msg) if msg.states else None

    async def apply_commands(self, message: IotCommands) -> None:
        from iot.legacy import apply_commands

        for outcome in await apply_commands(self.board, message):
            if outcome.is_error:
                logger.warning("iot command failed: %s", outcome.text)


def build_iot(
    identity: DeviceIdentity, *, legacy: bool, on_event: EventSink | None
) -> tuple[McpHandler | None, LegacyIot | None]:
    """The demo board for this identity, as (MCP server, None) or (None, legacy adapter)."""
    from iot.things import demo_board

    board = demo_board(identity.board_name, identity.firmware_version)
    if on_event is not None:

        def changed(thing: str, prop: str, value: bool | int | str) -> None:
            on_event(ThingChanged(thing, prop, value))

        board.on_change = changed
    if legacy:
        return None, LegacyIotAdapter(board)
    from iot.mcp_server import McpServer

    return McpServer(board), None
