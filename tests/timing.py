"""One time unit for tests: every wait is ``scaled(seconds)``.

``XIAOZHI_TEST_TIME_SCALE`` (default 1) multiplies all of them, for a slow or loaded CI machine.
"""

from __future__ import annotations

import os

TIME_SCALE = float(os.environ.get("XIAOZHI_TEST_TIME_SCALE", "1") or "1")


def scaled(seconds: float) -> float:
    """``seconds`` times the suite's time scale."""
    return seconds * TIME_SCALE
