"""A resumable ``/ws/asr`` session resumes on another worker: two servers share one PostgreSQL
store; the connection to the first is cut in the middle of the audio and the client reconnects
(with its session token) to the second, which takes the session from the store, has the client
resend after the last final's packet, and ends with the same transcript as an uncut stream."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clients.sequenced_client import SequencedClient
from protocol.audio import Pcm
from server.app import Providers
from server.storage import open_storage
from server.transcribe.jwt_auth import encode_hs256
from tests.e2e.conftest import running_server
from tests.storage.services import postgres

KEY = "test-key-not-secret"
PHRASES = ["turn on the kitchen lamp", "what time is it", "set the volume to thirty"]


@pytest.fixture
def pg_url() -> Iterator[str]:
    with postgres() as url:
        yield url


def silence(seconds: float) -> Pcm:
    return np.zeros(int(16000 * seconds), dtype=np.int16)


async def test_a_cut_session_resumes_on_the_other_worker(
    providers: Providers, speech: Callable[[str, str], Pcm], tmp_path: Path, pg_url: str
) -> None:
    audio = np.concatenate([
        silence(0.3), speech("turn on the kitchen lamp", "flite"), silence(1.0),
        speech("set the volume to thirty", "flite"), silence(0.8),
    ])  # fmt: skip
    transcribe: dict[str, Any] = {"phrases": PHRASES, "jwt_keys": [KEY], "resume_window_s": 30}
    token = encode_hs256({"sub": "alice", "exp": int(time.time() + 600)}, KEY)
    total = -(-len(audio) * 2 // 3200)
    async with (
        running_server(providers, tmp_path / "a", transcribe=transcribe, storage_url=pg_url) as a,
        running_server(providers, tmp_path / "b", transcribe=transcribe, storage_url=pg_url) as b,
    ):
        uncut = await SequencedClient(
            f"ws://127.0.0.1:{a.ws_port}/ws/asr", token, pace=0
        ).transcribe(audio)
        moved: list[int] = []

        def on_sent(client: SequencedClient, seq: int) -> None:
            # after the first final: worker A "dies" for this client, which goes to worker B
            if not moved and client.result.finals and seq >= total // 2:
                moved.append(seq)
                client.url = f"ws://127.0.0.1:{b.ws_port}/ws/asr"
                client.drop()

        client = SequencedClient(
            f"ws://127.0.0.1:{a.ws_port}/ws/asr", token, pace=4.0, first_delay_s=0.05,
            on_sent=on_sent,
        )  # fmt: skip
        result = await client.transcribe(audio)
    assert moved and result.reconnects >= 1
    # B ended the stream with its own packet count: only what was resent after the last final
    assert result.ended is not None and 0 < result.ended["packets"] < total
    assert result.text == uncut.text == "turn on the kitchen lamp set the volume to thirty"
    assert [m["text"] for m in result.finals.values()] == [m["text"] for m in uncut.finals.values()]
    assert sorted(m["segment"] for m in result.finals.values()) == [0, 1]  # numbering went on
    assert result.ended["last_seq"] == total - 1
    store = await open_storage(pg_url, "unused")
    try:  # an ended session is gone from the shared store
        assert await store.transcription(result.session, "alice") is None
    finally:
        await store.close()
