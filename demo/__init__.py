"""``python -m demo`` (``make demo``): our server and the simulator in one scripted conversation."""

from demo.run import DEFAULT_SCRIPT, board_of, main, run_demo

__all__ = ["DEFAULT_SCRIPT", "board_of", "main", "run_demo"]
