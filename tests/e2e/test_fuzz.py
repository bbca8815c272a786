"""A bounded socket fuzzer against every WebSocket endpoint and the HTTP side, with a normal
session talking beside it.

Seeded (``FUZZ_SEED``, printed) and time-boxed (``FUZZ_SECONDS``: 20 s in the test
suite, ``make fuzz`` runs longer). Inputs come from :mod:`tests.e2e.fuzz_inputs`. Invariants:

* the server never crashes and logs no error from its own code (no traceback);
* every case gets its defined outcome (``alive``, ``dropped`` or its close code); the
  transcription endpoints and the HTTP side never answer 1011 or a 5xx other than 503;
* the normal session's turns all complete with the right transcript;
* afterwards the server's file descriptors and asyncio tasks are back to their baseline and it
  serves a new turn.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import json
import logging
import os
import random
import struct
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from protocol.audio import Pcm, split_frames
from protocol.enums import ListenMode
from protocol.opus import OpusEncoder
from server.app import Providers, Server
from server.transcribe.jwt_auth import encode_hs256
from tests.e2e.conftest import device, is_msg, running_server
from tests.e2e.fuzz_inputs import ALIVE, DROPPED, Case, client_frame, junk_value, next_case
from tests.timing import scaled

pytestmark = pytest.mark.asyncio(loop_scope="session")

FUZZ_SECONDS = float(os.environ.get("FUZZ_SECONDS", "20"))
SEED = int(os.environ.get("FUZZ_SEED", "1717"))
WORKERS = 5
MAX_MESSAGE_BYTES = 16 * 1024
JWT_KEY = "fuzz-key-0123456789abcdef0123456789"
PATHS = ("/xiaozhi/v1/", "/xiaozhi/v1/", "/xiaozhi/v1/", "/", "/ws/asr", "/ws/record")
HELLO = json.dumps(
    {
        "type": "hello",
        "version": 1,
        "features": {"mcp": True},
        "transport": "websocket",
        "audio_params": {
            "format": "opus",
            "sample_rate": 16000,
            "channels": 1,
            "frame_duration": 60,
        },
    }
).encode()
TRANSCRIBE_OK = frozenset(
    {"open", DROPPED, ALIVE, *(f"close {c}" for c in (1000, 1002, 1003, 1007, 1008, 1009))}
    | {f"http {s}" for s in (400, 401, 403, 404, 503)}
)


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _fd_targets() -> dict[str, str]:
    out = {}
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own fd is gone already
            out[fd] = os.readlink(f"/proc/self/fd/{fd}")
    return out


class ServerFrames:
    """Reads the server's frames: text messages, the Close code, or EOF."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader
        self.texts: list[dict[str, object]] = []
        self.outcome: str | None = None
        self.changed = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            while True:
                b0, b1 = await self.reader.readexactly(2)
                n = b1 & 0x7F
                if n == 126:
                    (n,) = struct.unpack(">H", await self.reader.readexactly(2))
                elif n == 127:
                    (n,) = struct.unpack(">Q", await self.reader.readexactly(8))
                payload = await self.reader.readexactly(n)
                op = b0 & 0x0F
                if op == 0x8:
                    code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005
                    self.outcome = f"close {code}"
                    return
                if op == 0x1:
                    try:
                        self.texts.append(json.loads(payload))
                    except ValueError:
                        self.texts.append({"type": "?"})
                    self.changed.set()
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            self.outcome = self.outcome or DROPPED
        finally:
            self.changed.set()

    async def wait(self, pred: Callable[[], bool], timeout_s: float) -> bool:
        end = time.monotonic() + timeout_s
        while not pred() and self.outcome is None:
            self.changed.clear()
            left = end - time.monotonic()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except TimeoutError:
                return False
        return pred()


def _upgrade(path: str, extra: dict[str, str]) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    headers = {
        "Host": "127.0.0.1",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": key,
        "Sec-WebSocket-Version": "13",
        "Device-Id": "fu:zz:00:00:00:01",
        "Client-Id": "fuzz",
        "Protocol-Version": "1",
        **extra,
    }
    lines = [f"GET {path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def run_case(case: Case, port: int, path: str, rng: random.Random) -> str:
    """Play one case on a fresh connection; its outcome."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    frames: ServerFrames | None = None
    try:
        if case.handshake != "full":
            if case.handshake == "partial":
                writer.write(_upgrade(path, {})[: rng.randint(1, 60)])
            data = await asyncio.wait_for(reader.read(), scaled(10))
            return DROPPED if b"101" not in data else "open"
        extra: dict[str, str] = {}
        if path in ("/ws/asr", "/ws/record"):
            if path == "/ws/asr":
                extra["Sec-WebSocket-Protocol"] = "asr-protocol-v1"
            claims = {"sub": "fuzz", "exp": int(time.time()) + 600}
            extra["Authorization"] = "Bearer " + encode_hs256(claims, JWT_KEY)
        writer.write(_upgrade(path, extra))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), scaled(5))
        status = int(head.split(b" ", 2)[1])
        if status != 101:
            return f"http {status}"
        frames = ServerFrames(reader)
        xiaozhi = path.startswith("/xiaozhi")
        if xiaozhi and case.hello_first:
            writer.write(client_frame(0x1, HELLO))
        for opcode, payload in case.frames:
            writer.write(client_frame(opcode, payload))
        writer.write(case.raw)
        await writer.drain()
        if case.hang_up:
            return DROPPED
        if not xiaozhi or ALIVE not in case.expect:
            await frames.wait(lambda: False, scaled(1.5))
            return frames.outcome or "open"
        seen = len(frames.texts)
        writer.write(client_frame(0x1, HELLO))  # the probe: is the session still there?
        await writer.drain()
        answered = await frames.wait(
            lambda: any(t.get("type") == "hello" for t in frames.texts[seen:]), scaled(5)
        )
        return ALIVE if answered else frames.outcome or "silent"
    except (ConnectionError, OSError, asyncio.IncompleteReadError):
        return DROPPED
    finally:
        if frames is not None:
            frames.task.cancel()
        writer.close()


async def http_fuzz(port: int, rng: random.Random, deadline: float, statuses: list[int]) -> None:
    paths = ["/xiaozhi/ota/", "/xiaozhi/ota/activate", "/healthz", "/metrics", "/", "/recordings"]
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            method = rng.choice(["GET", "POST", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
            path = rng.choice([*paths, "/" + rng.randbytes(8).hex(), "/xiaozhi/ota/../../etc"])
            body = rng.choice(
                [
                    b"",
                    rng.randbytes(rng.randint(1, 2000)),
                    json.dumps(junk_value(rng)).encode(),
                    json.dumps(
                        {"application": junk_value(rng), "mac_address": junk_value(rng)}
                    ).encode(),
                    b"{" * 5000,
                    b"[" * 20000,
                    b"x" * (2 * 1024 * 1024),
                ]
            )
            headers = {
                "Device-Id": rng.choice(["", "a0:b7:65:00:00:09", "x" * 500, "é\u00ff", "a b;c"]),
                "Content-Type": rng.choice(["application/json", "text/plain", "multipart/x"]),
                "Activation-Version": rng.choice(["1", "2", "junk"]),
            }
            headers = {k: v.encode("utf-8").decode("latin-1") for k, v in headers.items()}
            try:
                async with session.request(
                    method, f"http://127.0.0.1:{port}{path}", data=body, headers=headers
                ) as response:
                    await response.read()
                    statuses.append(response.status)
            except aiohttp.ClientError:
                statuses.append(0)


async def normal_turns(
    server: Server, speech: Callable[[str, str], Pcm], stop: asyncio.Event
) -> list[str]:
    """A board talking normally, turn after turn, until ``stop``; the transcripts heard."""
    heard: list[str] = []
    async with device(server, device_id="a0:b7:65:aa:bb:cc") as board:
        while not stop.is_set():
            mark = len(board.events)
            await board.listen_start(ListenMode.AUTO)
            await board.speak(speech("turn on the lamp", "flite"))
            stt = await board.wait_for(is_msg("stt"), scaled(20), start=mark)
            heard.append(str(stt.data["text"]))
            await board.wait_for(is_msg("tts", "stop"), scaled(20), start=mark)
    return heard


async def test_fuzzer_against_every_endpoint_beside_a_normal_session(
    providers: Providers,
    tmp_path: Path,
    speech: Callable[[str, str], Pcm],
    caplog: pytest.LogCaptureFixture,
) -> None:
    print(f"fuzz seed {SEED}, {FUZZ_SECONDS:.0f} s, {WORKERS} workers")
    caplog.set_level(logging.INFO)
    sections = {
        "websocket": {"max_message_bytes": MAX_MESSAGE_BYTES, "hello_timeout_s": 3.0},
        "security": {"limits": {"handshake_timeout_s": 1.0}},
        "transcribe": {
            "jwt_keys": [JWT_KEY],
            "resume_window_s": 1.0,
            "recordings": {"enabled": True, "dir": tmp_path / "recordings"},
        },
    }
    encoder = OpusEncoder(16000, 60, complexity=0, dtx=True)
    opus = [encoder.encode(f) for f in split_frames(speech("what can you do", "flite"), 960)]
    async with running_server(providers, tmp_path, **sections) as srv:
        async with device(srv) as warm:  # warm-up: lazy imports, first session
            await warm.listen_start(ListenMode.AUTO)
            await warm.speak(speech("turn on the lamp", "flite"))
            await warm.wait_for(is_msg("tts", "stop"), scaled(20))
        async with aiohttp.ClientSession() as session:  # opens the registry (3 fds, once)
            ota = f"http://127.0.0.1:{srv.http_port}/xiaozhi/ota/"
            async with session.post(ota, json={}, headers={"Device-Id": "a0:b7:65:0:0:1"}) as r:
                assert r.status == 200
        await _settle(srv)
        base_fds, base_tasks = _fds(), len(asyncio.all_tasks())
        base_targets = _fd_targets()

        stop = asyncio.Event()
        normal = asyncio.create_task(normal_turns(srv, speech, stop))
        outcomes: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        undefined: list[tuple[str, str, str, int]] = []
        deadline = time.monotonic() + FUZZ_SECONDS
        started = time.monotonic()

        async def worker(index: int) -> None:
            rng = random.Random(SEED * 100 + index)
            count = 0
            while time.monotonic() < deadline:
                path = rng.choice(PATHS)
                case = next_case(rng, opus, MAX_MESSAGE_BYTES)
                outcome = await run_case(case, srv.ws_port, path, rng)
                outcomes[f"{path} {case.kind}"][outcome] += 1
                allowed = case.expect if path.startswith("/xiaozhi") else TRANSCRIBE_OK
                if outcome not in allowed:
                    undefined.append((path, case.kind, outcome, count))
                count += 1

        statuses: list[int] = []
        http_rng = random.Random(SEED)
        await asyncio.gather(
            *(worker(i) for i in range(WORKERS)),
            http_fuzz(srv.http_port, http_rng, deadline, statuses),
        )
        stop.set()
        heard = await asyncio.wait_for(normal, scaled(40))
        ran_s = time.monotonic() - started

        cases = sum(sum(c.values()) for c in outcomes.values())
        print(f"fuzz: {cases} socket cases + {len(statuses)} HTTP requests in {ran_s:.0f} s")
        for key in sorted(outcomes):
            print(f"  {key}: {dict(outcomes[key])}")
        print(f"  http statuses: {dict(collections.Counter(statuses))}")
        print(f"  normal session beside: {len(heard)} turns, heard {sorted(set(heard))}")
        report = os.environ.get("FUZZ_REPORT")
        if report:  # make fuzz: the figures of the README table
            figures = {
                "seed": SEED,
                "seconds": round(ran_s, 1),
                "socket_cases": cases,
                "http_requests": len(statuses),
                "undefined_outcomes": len(undefined),
                "normal_turns": len(heard),
                "normal_turns_wrong": sum(1 for h in heard if h != "turn on the lamp"),
                "outcomes": {k: dict(v) for k, v in sorted(outcomes.items())},
                "http_statuses": dict(collections.Counter(statuses)),
            }
            await asyncio.to_thread(Path(report).write_text, json.dumps(figures, indent=1) + "\n")
        assert not undefined, undefined[:20]
        assert cases >= 50 and len(statuses) >= 20
        assert all(s < 500 or s == 503 for s in statuses), collections.Counter(statuses)
        assert heard and set(heard) == {"turn on the lamp"}, heard

        await _settle(srv)
        await _until(lambda: _fds() <= base_fds, scaled(10))
        await _until(lambda: len(asyncio.all_tasks()) <= base_tasks, scaled(10))
        leaked = {k: v for k, v in _fd_targets().items() if base_targets.get(k) != v}
        assert _fds() <= base_fds, (leaked, [str(c) for c in srv._connections])
        assert len(asyncio.all_tasks()) <= base_tasks, asyncio.all_tasks()
        async with device(srv) as board:  # and it still serves a turn
            await board.listen_start(ListenMode.AUTO)
            await board.speak(speech("turn on the lamp", "flite"))
            stt = await board.wait_for(is_msg("stt"), scaled(20))
            assert stt.data["text"] == "turn on the lamp"
    errors = [
        r for r in caplog.records if r.name.startswith("server") and r.levelno >= logging.ERROR
    ]
    assert not errors, [f"{r.name}: {r.getMessage()}" for r in errors[:10]]


async def _until(pred: Callable[[], bool], timeout_s: float) -> None:
    """Poll ``pred`` (server-side counters have no event to wait on) until true or timeout."""
    end = time.monotonic() + timeout_s
    while not pred() and time.monotonic() < end:  # noqa: ASYNC110
        await asyncio.sleep(0.05)


async def _settle(server: Server) -> None:
    """Wait until no session or socket is open on the server."""
    ws = server._ws
    handlers = ws._server.handlers if ws is not None and ws._server is not None else {}
    await _until(lambda: server.sessions == 0 and not handlers, scaled(15))
