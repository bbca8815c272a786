"""Suite-wide test conventions.

* Every test under a ``tests/**/e2e/`` folder, in a ``test_*e2e*.py`` file, or marked
  ``@pytest.mark.e2e`` is end-to-end (real sockets, real engines, seconds each).
  ``pytest -m "not e2e"`` is the fast loop (< 60 s).
* Waits in tests are multiples of :func:`tests.timing.scaled`, which CI can stretch with
  ``XIAOZHI_TEST_TIME_SCALE`` on a slow machine.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = item.nodeid.split("::")[0].replace("\\", "/")
        if "/e2e/" in path or "e2e" in path.rsplit("/", 1)[-1]:
            item.add_marker(pytest.mark.e2e)
