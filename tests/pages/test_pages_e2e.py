"""The browser pages in real headless Chromium against a real server (flite speech as the
microphone, pocketsphinx, the local dialogue, WebCodecs Opus both ways). Each test saves a
screenshot of its page into tests/pages/screenshots/ (git-ignored)."""

from __future__ import annotations

import asyncio
import base64
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
MCP_CHECK_JS = (Path(__file__).parent / "mcp_check.js").read_text()


def spki_sha256(cert_file: Path) -> str:
    """base64 SHA-256 of the certificate's public key: what Chromium is told to trust."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


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


async def test_transcribe_live_sherpa(
    page_server: Server, browser_factory: Callable[..., Any], tmp_path: Path
) -> None:
    wav = write_wav(tmp_path / "volume.wav", ["set the volume to thirty"], tail_s=3.0)
    async with browser_factory(mic=wav) as page:
        await open_page(page, page_server, "/transcribe?protocol=sherpa")
        await page.click("#start")
        await wait_text(page, "#segments", "set the volume to thirty", 30)
        await page.click("#stop")
        await wait_text(page, "#status", "done")
        await screenshot(page, "transcribe-live-sherpa")
        assert not page.console_errors, page.console_errors


async def test_transcribe_live_sequenced_shows_confidence_and_entities(
    page_server: Server, browser_factory: Callable[..., Any], tmp_path: Path
) -> None:
    wav = write_wav(tmp_path / "volume.wav", ["set the volume to thirty"], tail_s=3.0)
    async with browser_factory(mic=wav) as page:
        await open_page(page, page_server, f"/transcribe?protocol=sequenced&token={token()}")
        await page.click("#start")
        await wait_text(page, "#segments", "set the volume to thirty", 30)
        await page.click("#stop")
        await wait_text(page, "#status", "done")
        marks = await page.eval_on_selector_all(
            "#segments mark.entity", "ms => ms.map(m => m.textContent)"
        )
        await screenshot(page, "transcribe-live-sequenced")
        assert any("thirty" in m for m in marks), marks  # the number entity is highlighted
        assert not page.console_errors, page.console_errors


async def test_transcribe_file_with_progress_and_srt(
    page_server: Server, browser_factory: Callable[..., Any], tmp_path: Path
) -> None:
    wav = write_wav(
        tmp_path / "two.wav", ["what time is it", "turn on the lamp"], lead_s=0.5, tail_s=1.0
    )
    async with browser_factory() as page:
        await open_page(page, page_server, "/transcribe-file")
        await page.set_input_files("#file", str(wav))
        await page.click("#go")
        await wait_text(page, "#status", "done: 2 segments", 30)
        rows = await page.eval_on_selector_all(
            "#segments tr", "rs => rs.map(r => [...r.cells].map(c => c.textContent))"
        )
        assert [r[2] for r in rows] == ["what time is it", "turn on the lamp"]
        assert rows[0][0] < rows[0][1] <= rows[1][0] < rows[1][1]  # hh:mm:ss.mmm sorts
        assert await page.eval_on_selector("#progress", "p => p.value") == 1
        async with page.expect_download() as info:
            await page.click("#download-srt")
        srt_path = await (await info.value).path()
        srt = await asyncio.to_thread(Path(srt_path).read_text)
        assert srt.startswith("1\n00:00:0") and " --> " in srt and "turn on the lamp" in srt
        await screenshot(page, "transcribe-file")
        assert not page.console_errors, page.console_errors


async def test_record_reconnects_after_a_server_side_cut(
    page_server: Server, browser_factory: Callable[..., Any], tmp_path: Path
) -> None:
    wav = write_wav(tmp_path / "record.wav", ["what time is it"], lead_s=0.5, tail_s=2.0)
    async with browser_factory(mic=wav) as page:
        await open_page(page, page_server, f"/record?token={token('recorder')}")
        await page.click("#start")
        await page.wait_for_function("window.recordStats.acked >= 3", timeout=scaled(15) * MS)
        ws_server = page_server._ws._server  # the test cuts the socket
        uploads = [c for c in ws_server.connections if c.request.path.startswith("/ws/record")]
        assert len(uploads) == 1
        uploads[0].transport.abort()  # no close frame: a dropped network
        await wait_text(page, "#conn", "retrying in 1 s", 10)
        await page.wait_for_function("window.recordStats.reconnects >= 1", timeout=scaled(5) * MS)
        await wait_text(page, "#conn", "connected", 10)
        await page.wait_for_function("window.recordStats.acked >= 10", timeout=scaled(15) * MS)
        await page.click("#stop")
        await page.wait_for_function("window.recordStats.done !== null", timeout=scaled(15) * MS)
        stats = await page.evaluate(
            "({done: recordStats.done, local: recordStats.localSha256,"
            " chunks: recordStats.chunks.length})"
        )
        rec_id = stats["done"]["id"]
        stored = next(page_server.settings.transcribe.recordings.dir.glob(f"*/{rec_id}/upload.bin"))
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == stats["local"]
        assert stats["done"]["chunks"] == stats["chunks"]
        await wait_text(page, "#result", "matches what was recorded")
        await wait_text(page, f"#recordings li[data-id='{rec_id}']", "what time is it", 15)
        await page.click(f"#recordings li[data-id='{rec_id}'] button")
        await page.wait_for_selector(f"#recordings li[data-id='{rec_id}'] audio")
        duration = await page.eval_on_selector(
            f"#recordings li[data-id='{rec_id}'] audio",
            "a => new Promise(r => a.readyState >= 1 ? r(a.duration) :"
            " a.addEventListener('loadedmetadata', () => r(a.duration)))",
        )
        assert abs(duration - stored.stat().st_size / 32000) < 0.05
        await screenshot(page, "record")
        assert not page.console_errors, page.console_errors


async def test_talk_push_to_talk_with_the_keyboard(
    page_server: Server, browser_factory: Callable[..., Any], tmp_path: Path
) -> None:
    """Space held on the focused button talks (manual mode: listen start/stop); the reply plays."""
    wav = write_wav(tmp_path / "volume.wav", ["set the volume to thirty"], tail_s=6.0)
    async with browser_factory(mic=wav) as page:
        await open_page(page, page_server, "/talk?device-id=browser-talk-2&mode=manual")
        await page.focus("#ptt")
        await page.keyboard.down(" ")
        await wait_text(page, "#state", "listening", 10)
        await page.wait_for_timeout(scaled(3.2) * MS)  # hold while the phrase is spoken
        await page.keyboard.up(" ")
        await wait_text(page, "#transcript", "set the volume to thirty", 20)
        await wait_text(page, "#volume", "30")
        await page.wait_for_function(
            "window.talkStats.turns >= 1 && window.talkStats.played >= 3", timeout=scaled(20) * MS
        )
        await wait_text(page, "#state", "idle")  # manual mode: back to idle after the reply
        await screenshot(page, "talk-push-to-talk")
        assert not page.console_errors, page.console_errors


async def test_talk_barge_in_by_speaking(
    page_server: Server, browser_factory: Callable[..., Any], tmp_path: Path
) -> None:
    """The fake microphone loops, so the user asks again while the story plays: with "interrupt
    by speaking" on, the page sends abort, its queued audio stops, and the server's tts stop
    ends the reply long before the story's last sentence."""
    wav = write_wav(tmp_path / "story.wav", ["tell me a story"], lead_s=1.0, tail_s=2.5)
    async with browser_factory(mic=wav) as page:
        await open_page(page, page_server, "/talk?device-id=browser-talk-3&mode=auto")
        await page.check("#voice-barge-in")
        await page.click("#start")
        await wait_text(page, "#state", "speaking", 30)
        await wait_text(page, "#log", '"reason":"wake_word_detected"', 20)
        await page.wait_for_function(
            "window.talkStats.turns >= 1", timeout=scaled(10) * MS
        )  # the server's tts stop ended the interrupted reply
        reply = await page.text_content("#reply") or ""
        await screenshot(page, "talk-barge-in")
        assert "keeper of the light" not in reply, reply
        assert not page.console_errors, page.console_errors


ACCESSIBLE_NAMES = """() => [...document.querySelectorAll(
    'button, input, select, textarea, meter, progress')]
  .filter(el => el.offsetParent !== null)
  .map(el => ({id: el.id, name: (el.getAttribute('aria-label')
      || [...(el.labels || [])].map(l => l.textContent).join(' ')
      || (el.tagName === 'BUTTON' ? el.textContent : '')).trim()}))"""


@pytest.mark.parametrize(
    "path", ["/talk", "/transcribe", "/transcribe-file", "/record", "/dashboard"]
)
async def test_pages_have_labels_and_keyboard_focus(
    page_server: Server, browser_factory: Callable[..., Any], path: str
) -> None:
    async with browser_factory() as page:
        await open_page(page, page_server, path)
        controls = await page.evaluate(ACCESSIBLE_NAMES)
        assert controls and all(c["name"] for c in controls), controls
        focusable = {
            c["id"]
            for c in await page.evaluate(
                "() => [...document.querySelectorAll('button, input, select')]"
                ".filter(el => el.offsetParent !== null && !el.disabled).map(el => ({id: el.id}))"
            )
        }
        reached = set()
        for _ in range(len(focusable) + 12):  # the nav links come first
            await page.keyboard.press("Tab")
            reached.add(await page.evaluate("document.activeElement.id"))
        assert focusable <= reached, focusable - reached


async def test_microphone_denied_says_so(
    page_server: Server, browser_factory: Callable[..., Any]
) -> None:
    async with browser_factory(deny_mic=True) as page:
        await open_page(page, page_server, "/talk")
        await page.click("#start")
        await wait_text(page, "#notice", "microphone access was denied", 10)
        assert await page.text_content("#state") == "idle"
        await screenshot(page, "talk-mic-denied")


async def test_microphone_missing_says_so(
    page_server: Server, browser_factory: Callable[..., Any]
) -> None:
    """No fake device and a headless machine without sound cards: no microphone at all."""
    async with browser_factory(extra_args=("--use-fake-ui-for-media-stream",)) as page:
        await open_page(page, page_server, "/transcribe")
        await page.click("#start")
        await wait_text(page, "#notice", "no microphone was found", 10)


async def test_plain_http_from_another_machine_asks_for_https(
    page_server: Server, browser_factory: Callable[..., Any]
) -> None:
    rules = "--host-resolver-rules=MAP pages.test 127.0.0.1"
    async with browser_factory(extra_args=(rules,)) as page:
        await page.goto(f"http://pages.test:{page_server.http_port}/record")
        await page.wait_for_selector("body[data-ready='1']", timeout=scaled(10) * MS)
        text = await page.text_content("#notice")
        assert text and "secure page" in text and "https://pages.test" in text
        await screenshot(page, "record-insecure-http")


async def test_dashboard_shows_the_turns_of_the_talk_tests(
    page_server: Server, browser_factory: Callable[..., Any]
) -> None:
    assert len(page_server.metrics.recent_turns) >= 2, "runs after both Talk tests (file order)"
    async with browser_factory() as page:
        await open_page(page, page_server, "/dashboard")
        await page.wait_for_selector("body[data-loaded]", timeout=scaled(10) * MS)
        turns = int(await page.text_content("#turns") or "0")
        assert turns >= 2
        bars = await page.eval_on_selector_all("#breakdown rect.stage", "rs => rs.length")
        assert bars >= 3
        await wait_text(page, "#devices", "browser-talk-1")
        await wait_text(page, "#devices", "browser-talk-2")
        counted = await page.eval_on_selector_all(
            "#histogram rect", "rs => rs.filter(r => +r.getAttribute('height') > 0).length"
        )
        assert counted >= 1
        await screenshot(page, "dashboard")
        await page.set_viewport_size({"width": 390, "height": 844})  # a phone
        width = await page.evaluate("document.documentElement.scrollWidth")
        await screenshot(page, "dashboard-phone")
        assert width <= 390, "no sideways scrolling on a phone"
        assert not page.console_errors, page.console_errors


async def test_the_pages_mcp_server_follows_the_firmware(
    page_server: Server, browser_factory: Callable[..., Any]
) -> None:
    """protocol.md §6 in the Talk page's board: paging by nextCursor, numeric ids only,
    errors without a code, argument checks."""
    async with browser_factory() as page:
        await open_page(page, page_server, "/talk")
        out = await page.evaluate(MCP_CHECK_JS)
    assert out["pages"] > 1 and len(out["names"]) == len(set(out["names"])) == 6
    assert out["init"]["id"] == 1 and out["init"]["result"]["protocolVersion"] == "2024-11-05"
    assert out["stringId"] is None and out["notification"] is None
    assert out["unknown"]["error"] == {"message": "Unknown tool: self.nothing"}
    assert out["missing"]["error"] == {"message": "Missing valid argument: volume"}
    assert out["high"]["error"] == {"message": "Value exceeds maximum allowed: 100"}
    assert out["ok"]["result"] == {"content": [{"type": "text", "text": "true"}], "isError": False}
    assert out["other"]["error"] == {"message": "Method not implemented: resources/list"}
    assert out["state"]["lamp"]["color"] == "red"


async def test_over_https_from_another_machine_the_microphone_works(
    providers: Any, browser_factory: Callable[..., Any], tmp_path: Path
) -> None:
    """https + wss with the server's own self-signed certificate, opened by a host name that is
    not localhost: a secure context, so the microphone works and no notice is shown."""
    from server.security.tls import write_self_signed
    from tests.e2e.conftest import running_server

    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    write_self_signed(cert, key, extra_names=("pages.test",))
    tls = {"tls": {"enabled": True, "cert_file": cert, "key_file": key}}
    wav = write_wav(tmp_path / "time.wav", ["what time is it"], tail_s=3.0)
    rules = "--host-resolver-rules=MAP pages.test 127.0.0.1"
    trust = f"--ignore-certificate-errors-spki-list={spki_sha256(cert)}"  # this cert only
    async with (
        running_server(
            providers, tmp_path, security=tls, transcribe={"phrases": ["what time is it"]}
        ) as server,
        browser_factory(mic=wav, extra_args=(rules, trust)) as page,
    ):
        await page.goto(f"https://pages.test:{server.http_port}/transcribe?protocol=sherpa")
        await page.wait_for_selector("body[data-ready='1']", timeout=scaled(10) * MS)
        assert await page.evaluate("window.isSecureContext")
        assert await page.is_hidden("#notice")
        await page.click("#start")
        await wait_text(page, "#segments", "what time is it", 30)
        await screenshot(page, "transcribe-over-https")
        assert not page.console_errors, page.console_errors
