"""Fixtures of the browser-page tests: one real server with the transcription service and
recordings on, real headless Chromium (the Debian package, driven by Playwright, never a
downloaded browser) whose microphone is a WAV file spoken by flite."""

from __future__ import annotations

import contextlib
import time
import wave
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio

from device.audio.sources import say
from server.app import Providers, Server
from server.transcribe.jwt_auth import encode_hs256
from tests.e2e.conftest import providers, running_server  # noqa: F401  (fixture re-export)

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).parent / "screenshots"
JWT_KEY = "pages-test-key"
PHRASES = ["turn on the lamp", "what time is it", "set the volume to thirty"]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
FAKE_MIC = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


def token(sub: str = "pages-user", **claims: Any) -> str:
    return encode_hs256({"sub": sub, "exp": time.time() + 3600, **claims}, JWT_KEY)


def write_wav(
    path: Path, texts: list[str], *, lead_s: float = 1.0, gap_s: float = 1.5, tail_s: float = 4.0
) -> Path:
    """flite speech of ``texts`` with silences, as 16 kHz mono 16-bit WAV."""
    silence = lambda s: np.zeros(int(16000 * s), dtype=np.int16)  # noqa: E731
    parts = [silence(lead_s)]
    for i, text in enumerate(texts):
        parts += [say(text), silence(tail_s if i == len(texts) - 1 else gap_s)]
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(np.concatenate(parts).tobytes())
    return path


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed: `make setup` installs chromium + chromium-driver")
    return CHROMIUM


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def page_server(
    providers: Providers,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Server]:
    tmp = tmp_path_factory.mktemp("pages")
    transcribe = {
        "phrases": PHRASES,
        "jwt_keys": [JWT_KEY],
        "recordings": {"enabled": True, "dir": tmp / "recordings"},
    }
    async with running_server(providers, tmp, transcribe=transcribe) as server:
        yield server


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def playwright_driver() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as driver:
        yield driver


@pytest.fixture
def browser_factory(
    playwright_driver: Any, chromium_path: Path, tmp_path: Path
) -> Callable[..., contextlib.AbstractAsyncContextManager[Any]]:
    """``async with browser_factory(mic=WAV or None, deny_mic=False) as page``: a fresh
    Chromium (own profile directory) and one page; console errors are collected on
    ``page.console_errors``."""

    @contextlib.asynccontextmanager
    async def open_page(
        mic: Path | None = None, *, deny_mic: bool = False, extra_args: tuple[str, ...] = ()
    ) -> AsyncIterator[Any]:
        args = list(CHROMIUM_FLAGS) + list(extra_args)
        if mic is not None:
            args += [*FAKE_MIC, f"--use-file-for-fake-audio-capture={mic}"]
        elif deny_mic:
            args += ["--use-fake-device-for-media-stream", "--deny-permission-prompts"]
        profile = tmp_path / f"profile-{time.monotonic_ns()}"
        context = await playwright_driver.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(chromium_path),
            headless=True,
            args=args,
            viewport={"width": 1200, "height": 900},
        )
        try:
            page = context.pages[0] if context.pages else await context.new_page()
            page.console_errors = []
            page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
            page.on("pageerror", lambda e: page.console_errors.append(str(e)))
            page.on(
                "response",
                lambda r: r.status >= 400 and page.console_errors.append(f"{r.status} {r.url}"),
            )
            yield page
        finally:
            await context.close()

    return open_page


async def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
