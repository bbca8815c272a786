"""Connecting with retries: 1 s, doubling, at most 5 tries (HTTP 503 and refused included)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus, WebSocketException
from websockets.typing import Subprotocol

from clients.audio import ClientError


async def connect_with_retries(
    url: str,
    *,
    headers: dict[str, str] | None = None,
    subprotocols: Sequence[str] | None = None,
    tries: int = 5,
    first_delay_s: float = 1.0,
) -> ClientConnection:
    """Open ``url``; HTTP 401 fails at once (retrying cannot help), other failures retry."""
    delay = first_delay_s
    last = ""
    for attempt in range(tries):
        try:
            return await connect(
                url,
                additional_headers=headers,
                subprotocols=[Subprotocol(s) for s in subprotocols] if subprotocols else None,
                max_size=2**20,
                open_timeout=10,
                compression=None,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            body = exc.response.body.decode(errors="replace").strip() if exc.response.body else ""
            if status == 401:
                raise ClientError(f"refused (HTTP 401): {body}") from exc
            last = f"HTTP {status} {body}"
        except (OSError, WebSocketException, TimeoutError) as exc:
            last = str(exc) or type(exc).__name__
        if attempt + 1 < tries:
            await asyncio.sleep(delay)
            delay *= 2
    raise ClientError(f"cannot connect to {url} after {tries} tries: {last}")
