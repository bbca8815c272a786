"""Recordings over real sockets: a chunked upload sent out of order with duplicates and a
reconnect is stored byte for byte; a sequenced stream is recorded as Ogg Opus with its
transcript; retention deletes; DELETE erases one device and nothing of another; kill -9 during
an upload loses at most the chunk in flight (a subprocess server)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import signal
import socket
import sys
import time
import wave
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
import pytest_asyncio
from websockets.asyncio.client import connect

from clients.sequenced_client import SequencedClient
from clients.sherpa_client import transcribe_sherpa
from clients.upload_client import upload_chunks
from protocol.audio import Pcm
from protocol.opus import OpusDecoder
from server.app import Providers, Server
from server.recordings.chunked import ChunkedUpload
from server.recordings.ogg_opus import read_packets
from server.recordings.store import RecordingStore
from server.transcribe.jwt_auth import encode_hs256
from tests.e2e.conftest import running_server
from tests.timing import scaled
from tests.transcribe.waiting import eventually

pytestmark = pytest.mark.asyncio(loop_scope="session")

KEY = "recordings-test-key"
ROOT = Path(__file__).resolve().parents[2]


def token(sub: str, *, admin: bool = False) -> str:
    claims: dict[str, Any] = {"sub": sub, "exp": int(time.time() + 600)}
    if admin:
        claims["admin"] = True
    return encode_hs256(claims, KEY)


def wav_bytes(pcm: Pcm) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm.tobytes())
    return out.getvalue()


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def server(
    providers: Providers, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Server]:
    rec_dir = tmp_path_factory.mktemp("recordings")
    transcribe: dict[str, Any] = {
        "jwt_keys": [KEY],
        "phrases": ["turn on the kitchen lamp", "what time is it"],
        "recordings": {
            "enabled": True,
            "dir": str(rec_dir),
            "endpoints": ["upload", "sequenced", "sherpa"],
        },
    }
    async with running_server(
        providers, tmp_path_factory.mktemp("rec"), transcribe=transcribe
    ) as srv:
        yield srv


def store(server: Server) -> RecordingStore:
    return RecordingStore(server.settings.transcribe.recordings.dir)


async def test_upload_out_of_order_duplicates_reconnect_is_byte_identical(
    server: Server, speech: Callable[[str, str], Pcm]
) -> None:
    pcm = speech("turn on the kitchen lamp", "flite")
    silence = np.zeros(4800, np.int16)
    source = wav_bytes(np.concatenate([silence, pcm, silence]))
    chunks = split(source, 4000)
    n = len(chunks)
    order = [2, 0, 0, 5, 1, 3, 3, *range(4, n), 2, n - 1]  # shuffled, with duplicates
    dropped: list[int] = []

    def on_sent(count: int, ws: Any) -> None:
        if count == 6 and not dropped:  # drop the connection mid-upload once
            dropped.append(count)
            ws.transport.abort()

    url = f"ws://127.0.0.1:{server.ws_port}/ws/record"
    result = await upload_chunks(
        url,
        token("alice"),
        chunks,
        device_id="dev-a",
        order=order,
        first_delay_s=0.05,
        on_sent=on_sent,
        fmt="wav",
    )
    assert dropped and result.reconnects >= 1
    assert result.done is not None and result.done["chunks"] == n
    rec = store(server).find(result.id)
    assert rec is not None and rec.device_id == "dev-a" and rec.user == "alice"
    assert (rec.folder / "upload.bin").read_bytes() == source
    assert not list((rec.folder / "pending").iterdir())
    # a wav upload is transcribed as it arrives, across the reconnect, in index order
    assert result.text == "turn on the kitchen lamp"
    lines = [json.loads(x) for x in (rec.folder / "transcript.jsonl").read_text().splitlines()]
    assert [x["text"] for x in lines] == ["turn on the kitchen lamp"]


async def test_sequenced_stream_is_recorded_as_ogg_opus_with_transcript(
    server: Server, speech: Callable[[str, str], Pcm]
) -> None:
    clip = np.concatenate(
        [
            np.zeros(4800, np.int16),
            speech("turn on the kitchen lamp", "flite"),
            np.zeros(12800, np.int16),
        ]
    )
    client = SequencedClient(f"ws://127.0.0.1:{server.ws_port}/ws/asr", token("bob"), pace=0)
    result = await client.transcribe(clip)
    assert result.text == "turn on the kitchen lamp"
    recs = [r for r in store(server).select(user="bob") if r.endpoint == "sequenced"]
    assert len(recs) == 1
    folder = recs[0].folder
    for _ in range(100):  # the stream closes (and the file is finished) just after `ended`
        if json.loads((folder / "meta.json").read_text()).get("complete"):
            break
        await asyncio.sleep(scaled(0.05))
    packets, _ = read_packets(folder / "audio.opus")
    decoder = OpusDecoder(16000, 20)
    decoded = np.concatenate([decoder.decode(p) for p in packets])
    assert abs(len(decoded) - len(clip)) <= 320  # the last frame is padded
    lines = [json.loads(x) for x in (folder / "transcript.jsonl").read_text().splitlines()]
    assert [x["text"] for x in lines] == ["turn on the kitchen lamp"]
    assert 0 <= lines[0]["start_ms"] < lines[0]["end_ms"] <= len(clip) / 16


async def test_sherpa_stream_is_recorded_when_the_endpoint_opted_in(
    server: Server, speech: Callable[[str, str], Pcm]
) -> None:
    clip = np.concatenate([np.zeros(4800, np.int16), speech("turn on the kitchen lamp", "flite")])
    url = f"ws://127.0.0.1:{server.ws_port}/?device-id=sherpa-dev"
    result = await transcribe_sherpa(url, clip, pace=0)
    assert result.text == "turn on the kitchen lamp"
    (rec,) = store(server).select(device_id="sherpa-dev")
    assert rec.endpoint == "sherpa"
    assert await eventually(
        lambda: json.loads((rec.folder / "meta.json").read_text()).get("complete")
    )
    packets, _ = read_packets(rec.folder / "audio.opus")
    assert abs(len(packets) * 320 - len(clip)) <= 320
    lines = [json.loads(x) for x in (rec.folder / "transcript.jsonl").read_text().splitlines()]
    assert [x["text"] for x in lines] == ["turn on the kitchen lamp"]


async def test_delete_api_erases_one_device_only(server: Server) -> None:
    s = store(server)
    for device, user in (("dev-x", "carol"), ("dev-x", "carol"), ("dev-y", "carol")):
        s.create(device, user, "upload")
    base = f"http://127.0.0.1:{server.http_port}/recordings"
    async with aiohttp.ClientSession() as http:
        async with http.delete(base, params={"device": "dev-x"}) as r:
            assert r.status == 401
        async with http.get(
            base,
            headers={"Authorization": f"Bearer {token('mallory')}"},
            params={"device": "dev-x"},
        ) as r:
            assert (await r.json())["recordings"] == []  # not mallory's
        headers = {"Authorization": f"Bearer {token('carol')}"}
        async with http.get(base, headers=headers, params={"device": "dev-x"}) as r:
            assert len((await r.json())["recordings"]) == 2
        async with http.delete(base, headers=headers, params={"device": "dev-x"}) as r:
            assert r.status == 200 and (await r.json()) == {"deleted": 2}
    assert s.select(device_id="dev-x") == []
    assert len(s.select(device_id="dev-y")) == 1
    assert len(s.select(device_id="dev-a")) >= 1  # the other test's device is untouched


async def test_download_needs_the_owner(server: Server) -> None:
    rec = store(server).create("dev-z", "dave", "upload")
    (rec.folder / "upload.bin").write_bytes(b"abc")
    url = f"http://127.0.0.1:{server.http_port}/recordings/{rec.id}/upload.bin"
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers={"Authorization": f"Bearer {token('eve')}"}) as r:
            assert r.status == 404
        async with http.get(url, headers={"Authorization": f"Bearer {token('dave')}"}) as r:
            assert r.status == 200 and await r.read() == b"abc"


async def test_short_retention_sweeps_files(providers: Providers, tmp_path: Path) -> None:
    rec_dir = tmp_path / "recordings"
    old = RecordingStore(rec_dir, clock=lambda: time.time() - 10).create("dev-old", "u", "upload")
    transcribe = {
        "jwt_keys": [KEY],
        "recordings": {
            "enabled": True,
            "dir": str(rec_dir),
            "retention_s": 2,
            "sweep_interval_s": 0.1,
        },
    }
    async with running_server(providers, tmp_path, transcribe=transcribe):
        fresh = RecordingStore(rec_dir).create("dev-new", "u", "upload")
        assert await eventually(lambda: not old.folder.exists()), "past retention: swept"
        assert fresh.folder.exists(), "within retention: kept"
        assert await eventually(lambda: not fresh.folder.exists(), 10), "swept once it aged"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_kill_9_during_upload_loses_at_most_the_chunk_in_flight(tmp_path: Path) -> None:
    rec_dir = tmp_path / "recordings"
    ws_port, http_port = free_port(), free_port()
    config = tmp_path / "config.yaml"
    config.write_text(
        json.dumps(
            {
                "websocket": {"host": "127.0.0.1", "port": ws_port},
                "ota": {
                    "host": "127.0.0.1",
                    "port": http_port,
                    "db_path": str(tmp_path / "d.sqlite3"),
                },
                "transcribe": {
                    "jwt_keys": [KEY],
                    "recordings": {"enabled": True, "dir": str(rec_dir)},
                },
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("XIAOZHI_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        "--config",
        str(config),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        url = f"ws://127.0.0.1:{ws_port}/ws/record?device-id=dev-k"
        deadline = time.monotonic() + scaled(60)
        while True:
            try:
                ws = await connect(
                    url, additional_headers={"Authorization": f"Bearer {token('k')}"}
                )
                break
            except OSError:
                assert time.monotonic() < deadline, "server did not start"
                await asyncio.sleep(0.2)
        source = os.urandom(40 * 3000)
        chunks = split(source, 3000)
        hello = json.loads(await ws.recv())
        acked = 0
        for index in range(20):
            await ws.send(
                json.dumps({"index": index, "data": base64.b64encode(chunks[index]).decode()})
            )
            ack = json.loads(await ws.recv())
            assert ack == {"type": "ack", "index": index, "duplicate": False}
            acked += 1
        await ws.send(json.dumps({"index": 20, "data": base64.b64encode(chunks[20]).decode()}))
        proc.send_signal(signal.SIGKILL)  # the chunk in flight may or may not be on disk
        await proc.wait()
        ws.transport.abort()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    rec = RecordingStore(rec_dir).find(hello["id"])
    assert rec is not None
    recovered = ChunkedUpload(rec.folder)
    assert recovered.next_index in (acked, acked + 1)
    stored = (rec.folder / "upload.bin").read_bytes()
    assert stored == source[: len(stored)] and len(stored) >= acked * 3000
