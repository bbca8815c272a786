"""Client of ``/ws/record``: indexed chunks, buffered while reconnecting and resent."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from websockets.exceptions import ConnectionClosed

from clients.audio import ClientError
from clients.connect import connect_with_retries


@dataclass
class UploadResult:
    id: str = ""
    done: dict[str, Any] | None = None
    reconnects: int = 0
    sent: int = 0
    finals: dict[int, str] = field(default_factory=dict)
    """Transcript of a pcm/wav upload by segment (the server transcribes those)."""

    @property
    def text(self) -> str:
        return " ".join(t for _, t in sorted(self.finals.items()) if t)


async def upload_chunks(
    url: str,
    token: str,
    chunks: Sequence[bytes],
    *,
    device_id: str = "",
    order: Sequence[int] | None = None,
    tries: int = 5,
    first_delay_s: float = 1.0,
    on_sent: Callable[[int, Any], None] | None = None,
    fmt: str = "",
) -> UploadResult:
    """Upload ``chunks`` (sent in ``order``, duplicates allowed); unacknowledged ones are resent
    after a reconnect; returns when the server confirms the whole recording."""
    result = UploadResult()
    plan = list(order) if order is not None else list(range(len(chunks)))
    acked: set[int] = set()
    for _attempt in range(tries):
        query = {"device-id": device_id, "format": fmt}
        if result.id:
            query["recording"] = result.id
        ws = await connect_with_retries(
            f"{url}?{urlencode(query)}",
            headers={"Authorization": f"Bearer {token}"},
            tries=tries,
            first_delay_s=first_delay_s,
        )
        try:
            hello = json.loads(await ws.recv())
            if hello.get("type") != "recording":
                raise ClientError(f"upload refused: {hello}")
            result.id = hello["id"]
            todo = [i for i in plan if i not in acked] + [
                i for i in range(len(chunks)) if i not in acked and i not in plan
            ]
            for index in todo:
                message = {"index": index, "data": base64.b64encode(chunks[index]).decode()}
                await ws.send(json.dumps(message))
                result.sent += 1
                if on_sent is not None:
                    on_sent(result.sent, ws)
                await asyncio.sleep(0)
            await ws.send(json.dumps({"action": "end"}))
            async for raw in ws:
                data = json.loads(raw)
                if data.get("type") == "ack":
                    acked.add(int(data["index"]))
                elif data.get("type") == "result" and data.get("is_final"):
                    result.finals[int(data["segment"])] = str(data["text"])
                elif data.get("type") == "done":
                    result.done = data
                    return result
                elif data.get("code") == "missing-chunks":
                    for index in data["missing"]:
                        message = {"index": index, "data": base64.b64encode(chunks[index]).decode()}
                        await ws.send(json.dumps(message))
                    await ws.send(json.dumps({"action": "end"}))
                elif data.get("type") == "error":
                    raise ClientError(f"upload error {data.get('code')}: {data.get('message')}")
        except ConnectionClosed:
            pass
        result.reconnects += 1
        await asyncio.sleep(first_delay_s)
    raise ClientError("upload: connection lost too often; giving up")
