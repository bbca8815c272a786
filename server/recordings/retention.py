"""The retention sweeper: every ``interval_s``, delete recordings older than ``retention_s``."""

from __future__ import annotations

import asyncio
import logging

from server.recordings.store import RecordingStore

logger = logging.getLogger(__name__)


async def sweep_forever(store: RecordingStore, retention_s: float, interval_s: float) -> None:
    """Run until cancelled (a failing sweep is logged and retried at the next interval)."""
    while True:
        try:
            await asyncio.to_thread(store.sweep, retention_s)
        except Exception:
            logger.exception("recording retention sweep failed")
        await asyncio.sleep(interval_s)
