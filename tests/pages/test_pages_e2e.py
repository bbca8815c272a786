"""The browser pages in real headless Chromium against a real server (flite speech as the
microphone, pocketsphinx, the local dialogue, WebCodecs Opus both ways). Each test saves a
screenshot of its page into tests/pages/screenshots/ (git-ignored)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from server.app import Server
from tests.pages.conftest import screenshot, token, write_wav
from tests.timing import scaled

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

MS = 1000


def url(server: Server, path: str) -> str:
    return f"http://127.0.0.1:{server.http_port}{path}"


async def wait_text(page: Any, selector: str, text: str, seconds: float = 20) -> None:
    await page.wait_for_function(
        "([s, t]) => (document.querySelector(s)?.textContent || '').toLowerCase().includes(t)",
        arg=[selector, text],
        timeout=scaled(seconds) * MS,
    )


async def open_page(page: Any, server: Server, path: str) -> None:
    await page.goto(url(server, path))
    await page.wait_for_selector("body[data-ready='1']", timeout=scaled(10) * MS)


async def test_talk_turn_on_the_lamp(
    page_server: Server, browser_factory: Callable[..., Any], tmp_path: Path
) -> None:
    wav = write_wav(tmp_path / "lamp.wav", ["turn on the lamp"], tail_s=6.0)
    async with browser_factory(mic=wav) as page:
        await open_page(page, page_server, "/talk?device-id=browser-talk-1&mode=auto")
        assert await page.text_content("#lamp-state") == "off"
        await page.click("#start")
        await wait_text(page, "#transcript", "turn on the lamp", 30)
        await wait_text(page, "#lamp-state", "on,")
        assert await page.get_attribute("#bulb", "aria-label") == "lamp on"
        await wait_text(page, "#tool-calls", "self.lamp.turn_on")
        await page.wait_for_function(
            "document.getElementById('reply').textContent.length > 0", timeout=scaled(20) * MS
        )
        await page.wait_for_function(
            "window.talkStats.turns >= 1 && window.talkStats.played >= 5", timeout=scaled(20) * MS
        )
        stats = await page.evaluate("window.talkStats")
        reply = await page.text_content("#reply")
        await screenshot(page, "talk")
        assert stats["sent"] > 10, "Opus uplink frames were sent"
        assert stats["decoded"] >= stats["played"] >= 5, stats
        assert reply and reply.strip()
        assert not page.console_errors, page.console_errors
