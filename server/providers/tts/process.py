"""Run a TTS command-line engine as an asyncio subprocess (no shell, bounded concurrency)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import Sequence

from server.providers.base import ProviderError, ProviderUnavailable

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 2000
"""Longer inputs are refused: the session feeds one sentence at a time."""


def find_binary(names: Sequence[str], debian_package: str) -> str:
    """Absolute path of the first binary found, else :class:`ProviderUnavailable` naming the
    Debian package to install."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise ProviderUnavailable(
        f"{names[0]} not found on PATH; install it with: sudo apt-get install {debian_package}"
    )


def check_text(text: str) -> str:
    """Normalise one sentence for an engine; raises ProviderError for empty/oversized input."""
    clean = " ".join(text.replace("\x00", " ").split())
    if not clean:
        raise ProviderError("nothing to synthesize (empty text)", code="tts-empty-text")
    if len(clean) > MAX_TEXT_CHARS:
        raise ProviderError(
            f"text too long for one synthesis ({len(clean)} > {MAX_TEXT_CHARS} chars)",
            code="tts-text-too-long",
        )
    return clean


async def run_engine(
    argv: Sequence[str],
    *,
    stdin: bytes | None,
    limit: asyncio.Semaphore,
    timeout_s: float,
) -> bytes:
    """Run ``argv`` (no shell) and return its stdout; kill it on timeout or cancellation."""
    async with limit:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin), timeout_s)
        except BaseException as exc:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(Exception):
                await asyncio.shield(proc.wait())
            if isinstance(exc, TimeoutError):
                raise ProviderError(
                    f"{argv[0]} took longer than {timeout_s:g} s",
                    code="tts-timeout",
                    retryable=True,
                ) from None
            raise
    if proc.returncode != 0:
        detail = err.decode(errors="replace").strip()[:200]
        raise ProviderError(
            f"{argv[0]} exited with {proc.returncode}: {detail}", code="tts-engine-failed"
        )
    return out
