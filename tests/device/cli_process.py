"""Run ``python -m device`` as a user would: a subprocess, its exit status and both streams."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.timing import scaled

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class CliRun:
    code: int
    out: str
    err: str
    seconds: float
    """Wall time of the whole run."""

    def events(self) -> list[dict[str, Any]]:
        """The ``--json`` lines."""
        return [json.loads(line) for line in self.out.splitlines() if line.startswith("{")]

    def result(self) -> dict[str, Any]:
        """The one ``result`` event, which must be the last line."""
        events = self.events()
        results = [e for e in events if e["event"] == "result"]
        assert len(results) == 1 and events[-1] is results[0], self.out
        return results[0]


async def run_cli(*args: str, timeout_s: float = 60.0, cwd: Path | None = None) -> CliRun:
    start = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "device",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd or ROOT,
    )
    out, err = await asyncio.wait_for(proc.communicate(), scaled(timeout_s))
    assert proc.returncode is not None
    return CliRun(proc.returncode, out.decode(), err.decode(), time.monotonic() - start)
