"""Simulated things and the demo board (see :func:`demo_board`)."""

from iot.things.board import Board, BoardTool, demo_board

__all__ = ["Board", "BoardTool", "demo_board"]
