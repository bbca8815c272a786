"""Client of ``/ws/asr`` (subprotocol ``asr-protocol-v1``): JWT, seq'd packets, resume, resend.

After a drop it reconnects (1 s, doubling, at most 5 tries) with ``?session=&last_seq=`` and
resends every packet after the server's ``last_seq`` (from its buffer of sent packets), so the
server gets each packet exactly once and the transcript continues.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import numpy as np
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from clients.audio import ClientError
from clients.connect import connect_with_retries

SUBPROTOCOL = "asr-protocol-v1"


@dataclass
class SequencedResult:
    finals: dict[int, dict[str, Any]] = field(default_factory=dict)
    """Final result message of each segment."""
    partials: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    ended: dict[str, Any] = field(default_factory=dict)
    """The server's ``ended`` control message (packets, duplicates, gaps)."""
    reconnects: int = 0
    packets_sent: int = 0
    """Audio packets sent, resends included."""
    session: str = ""

    @property
    def text(self) -> str:
        return " ".join(m["text"] for _, m in sorted(self.finals.items()) if m["text"])


class SequencedClient:
    """``await client.transcribe(samples)``; ``drop()`` cuts the connection (tests)."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        packet_bytes: int = 3200,
        pace: float = 1.0,
        tries: int = 5,
        first_delay_s: float = 1.0,
        on_sent: Callable[[SequencedClient, int], None] | None = None,
        subprotocol: str = SUBPROTOCOL,
    ) -> None:
        self.url, self.token = url, token
        self.packet_bytes, self.pace = packet_bytes, pace
        self.tries, self.first_delay_s = tries, first_delay_s
        self.on_sent = on_sent
        self.subprotocol = subprotocol
        self.result = SequencedResult()
        self._ws: ClientConnection | None = None
        self._last_result_seq = -1

    def drop(self) -> None:
        """Abort the TCP connection without a close frame (a client-side drop)."""
        if self._ws is not None:
            self._ws.transport.abort()

    async def transcribe(self, samples: np.ndarray) -> SequencedResult:
        raw = np.asarray(samples, dtype="<i2").tobytes()
        packets = [raw[i : i + self.packet_bytes] for i in range(0, len(raw), self.packet_bytes)]
        start = time.monotonic()
        tries_left = self.tries
        while True:
            try:
                ws = await self._connect()
            except ClientError:
                raise
            try:
                if await self._run(ws, packets, start):
                    return self.result
            except ConnectionClosed:
                pass
            tries_left -= 1
            if tries_left <= 0:
                raise ClientError("connection lost too often; giving up")
            self.result.reconnects += 1

    async def _connect(self) -> ClientConnection:
        query = {}
        if self.result.session:
            query = {"session": self.result.session, "last_seq": str(self._last_result_seq)}
        url = self.url + ("?" + urlencode(query) if query else "")
        ws = await connect_with_retries(
            url,
            headers={"Authorization": f"Bearer {self.token}"},
            subprotocols=[self.subprotocol],
            tries=self.tries,
            first_delay_s=self.first_delay_s,
        )
        self._ws = ws
        return ws

    async def _run(self, ws: ClientConnection, packets: list[bytes], start: float) -> bool:
        greeting = json.loads(await ws.recv())
        if greeting.get("action") != "session":
            raise ClientError(f"unexpected first message {greeting}")
        if self.result.session and not greeting["resumed"]:
            raise ClientError("the server could not resume the session (window passed?)")
        self.result.session = greeting["session"]
        cursor = [int(greeting["last_seq"]) + 1]
        ended = asyncio.Event()

        async def receive() -> None:
            async for message in ws:
                if not isinstance(message, str):
                    continue
                data = json.loads(message)
                kind, action = data.get("type"), data.get("action")
                if kind == "result":
                    self._last_result_seq = max(self._last_result_seq, int(data["seq"]))
                    if data["is_final"]:
                        self.result.finals[int(data["segment"])] = data
                    else:
                        self.result.partials.append((time.monotonic(), data))
                elif action == "nack":
                    cursor[0] = int(data["expected"])
                elif action == "ended":
                    self.result.ended = data
                    ended.set()
                elif kind == "error":
                    raise ClientError(f"server error {data.get('code')}: {data.get('message')}")

        receiver = asyncio.create_task(receive())
        try:
            while cursor[0] < len(packets):
                seq = cursor[0]
                cursor[0] += 1
                payload = packets[seq]
                header = {
                    "type": "audio",
                    "seq": seq,
                    "timestamp": round(seq * len(packets[0]) / 32),
                    "data_length": len(payload),
                }
                await ws.send(json.dumps(header))
                await ws.send(payload)
                self.result.packets_sent += 1
                if self.on_sent is not None:
                    self.on_sent(self, seq)
                if self.pace > 0:
                    due = start + (seq + 1) * len(packets[0]) / 32000 / self.pace
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
                if receiver.done():
                    break
            if not receiver.done():
                await ws.send(json.dumps({"type": "control", "action": "end"}))
            await receiver  # ends when the server closes after `ended` (raises if it dropped)
            return ended.is_set()
        finally:
            receiver.cancel()
