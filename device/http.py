"""A minimal raw HTTP/1.1 client so header order on the wire is exactly the firmware's.

The board's HTTP client writes ``Host`` first, then its custom headers sorted by lowercased name,
then ``Content-Length`` and ``Connection: close``. aiohttp reorders headers, so we write bytes.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from device.tls import client_context

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20


class HttpError(Exception):
    """Connect failure, timeout or an unreadable response.

    ``refused``: nothing listens on that port. ``empty_reply``: the peer closed the connection
    without sending a single byte (what a WebSocket server does to a POST).
    """

    def __init__(self, message: str, *, refused: bool = False, empty_reply: bool = False) -> None:
        super().__init__(message)
        self.refused = refused
        self.empty_reply = empty_reply


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def host_header(url: str) -> str:
    """``host`` plus ``:port`` when the port is not the scheme's default (OTA requests)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    default = 443 if parts.scheme in ("https", "wss") else 80
    return host if parts.port in (None, default) else f"{host}:{parts.port}"


def build_request(method: str, url: str, headers: dict[str, str], body: bytes) -> bytes:
    """The request bytes: Host, sorted custom headers, Content-Length, Connection: close."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host_header(url)}"]
    lines += [f"{k}: {v}" for k, v in sorted(headers.items(), key=lambda kv: kv[0].lower())]
    lines += [f"Content-Length: {len(body)}", "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


async def request(
    method: str, url: str, headers: dict[str, str], body: bytes, *, timeout_s: float = 30.0
) -> HttpResponse:
    """Send one request on a fresh connection and read the whole response."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HttpError(f"unsupported URL {url!r} (need http:// or https://)")
    tls = client_context() if parts.scheme == "https" else None
    port = parts.port or (443 if tls else 80)
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(parts.hostname, port, ssl=tls)
            try:
                writer.write(build_request(method, url, headers, body))
                await writer.drain()
                return await _read_response(reader)
            finally:
                writer.close()
    except TimeoutError as exc:
        raise HttpError(f"HTTP {method} {url} timed out after {timeout_s} s") from exc
    except ConnectionRefusedError as exc:
        raise HttpError(f"HTTP {method} {url}: connection refused", refused=True) from exc
    except asyncio.IncompleteReadError as exc:
        empty = not exc.partial
        what = "closed the connection without an answer" if empty else f"answer cut short: {exc}"
        raise HttpError(f"HTTP {method} {url}: {what}", empty_reply=empty) from exc
    except (OSError, ValueError) as exc:
        raise HttpError(f"HTTP {method} {url} failed: {exc}") from exc


async def _read_response(reader: asyncio.StreamReader) -> HttpResponse:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status_parts = lines[0].split(" ", 2)
    if len(status_parts) < 2 or not status_parts[0].startswith("HTTP/"):
        raise HttpError(f"bad status line {lines[0]!r}")
    status = int(status_parts[1])
    headers = [(k.strip(), v.strip()) for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)]
    lower = {k.lower(): v for k, v in headers}
    if lower.get("transfer-encoding", "").lower() == "chunked":
        body = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                break
            body += await reader.readexactly(size)
            await reader.readexactly(2)
            if len(body) > MAX_BODY_BYTES:
                raise HttpError("response body too large")
        return HttpResponse(status, headers, bytes(body))
    if "content-length" in lower:
        length = int(lower["content-length"])
        if length > MAX_BODY_BYTES:
            raise HttpError("response body too large")
        return HttpResponse(status, headers, await reader.readexactly(length))
    return HttpResponse(status, headers, await reader.read(MAX_BODY_BYTES))
