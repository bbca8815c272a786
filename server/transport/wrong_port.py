"""Plain HTTP on the WebSocket port: say what this port is and where the OTA URL lives.

The classic set-up mistake is a board whose OTA URL points at the WebSocket port (8000) instead
of the HTTP one (8003). ``websockets`` answers only a ``GET`` upgrade and closes anything else
without a word, so the board's OTA POST got an empty reply and it retried forever. Here:

* :class:`WrongPortAnswer` builds the ``426`` text (naming the OTA URL with the host name the
  client used), counts every request and logs once per remote host at INFO;
* :class:`PlainHttpTolerantConnection` answers a non-GET request itself, before ``websockets``
  parses it; a ``GET`` without ``Upgrade`` reaches the handshake, which asks the same answer.

Every such answer carries :data:`PORT_HEADER` ``: websocket`` so clients (the simulator) can tell.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.server import ServerConnection

logger = logging.getLogger(__name__)

PORT_HEADER = "X-Xiaozhi-Port"
STATUS = HTTPStatus.UPGRADE_REQUIRED
MAX_HEAD_BYTES = 8192
"""A non-GET request head longer than this is answered without waiting for its end."""
MAX_REMEMBERED_REMOTES = 1024
"""Remote hosts already told in the log (then the log starts over)."""


def host_name(header: str) -> str:
    """The host the client used (``Host`` header without port), else ``HOST``."""
    host = header.strip()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]" if "]" in host else "HOST"
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    ok = name and all(c.isalnum() or c in ".-" for c in name)
    return name if ok else "HOST"


class WrongPortAnswer:
    """The text told to plain HTTP; ``ota_port`` may change after start (HTTP bound later)."""

    def __init__(
        self,
        *,
        websocket_path: str,
        ota_port: int,
        ota_path: str,
        on_request: Callable[[], None] | None = None,
    ) -> None:
        self.websocket_path = websocket_path
        self.websocket_port = 0
        self.ota_port = ota_port
        self.ota_path = "/" + ota_path.strip("/") + "/" if ota_path.strip("/") else "/"
        self._on_request = on_request
        self._told: set[str] = set()

    def text(self, host: str) -> str:
        """The answer for a client that used ``host`` (a name, without port)."""
        return (
            f"this is the xiaozhi WebSocket port; the OTA/config URL is "
            f"http://{host}:{self.ota_port}{self.ota_path}\n"
            f"(WebSocket clients connect to ws://{host}:{self.websocket_port}"
            f"{self.websocket_path})\n"
        )

    def __call__(self, method: str, path: str, host_header: str, remote: str) -> str:
        """Count and log (once per remote host) one plain HTTP request; the text to answer."""
        if self._on_request is not None:
            self._on_request()
        remote_host = remote.rsplit(":", 1)[0]
        if remote_host not in self._told:
            if len(self._told) >= MAX_REMEMBERED_REMOTES:
                self._told.clear()
            self._told.add(remote_host)
            logger.info(
                "plain HTTP %s %s from %s on the WebSocket port: answered that the OTA URL is on "
                "port %d (is the board's OTA URL pointed at port %d?)",
                method,
                urlsplit(path).path,
                remote,
                self.ota_port,
                self.websocket_port,
            )
        return self.text(host_name(host_header))


class PlainHttpTolerantConnection(ServerConnection):
    """A connection that answers a non-GET request with :attr:`answer` instead of closing it.

    ``answer`` is set on a subclass made per server (``websockets`` builds the connection)."""

    answer: WrongPortAnswer | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head: bytes | None = b""

    def data_received(self, data: bytes) -> None:
        if self._head is None or self.answer is None:
            super().data_received(data)
            return
        head = self._head + data
        if head[:3] == b"GET"[: len(head[:3])]:  # the upgrade (or a browser): websockets' job
            if len(head) < 3:
                self._head = head
                return
        elif b" " in head[:16] and head[: head.find(b" ")].isalpha():  # POST, HEAD, PUT …
            if head.find(b"\r\n\r\n") < 0 and len(head) < MAX_HEAD_BYTES:
                self._head = head
                return
            self._answer(head)
            return
        elif len(head) < 16:
            self._head = head
            return
        self._head = None
        super().data_received(head)

    def _answer(self, head: bytes) -> None:
        assert self.answer is not None
        self._head = None
        lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        method, _, rest = lines[0].partition(" ")
        path = rest.rsplit(" ", 1)[0] if " " in rest else rest
        fields = (line.partition(":") for line in lines[1:])
        host = next((value.strip() for key, _, value in fields if key.lower() == "host"), "")
        address = self.transport.get_extra_info("peername")
        remote = f"{address[0]}:{address[1]}" if address else "?"
        text = self.answer(method[:16], path[:200], host, remote).encode()
        self.transport.write(
            b"HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: %d\r\nUpgrade: websocket\r\n%s: websocket\r\n"
            b"Connection: close\r\n\r\n%s"
            % (STATUS.value, STATUS.phrase.encode(), len(text), PORT_HEADER.encode(), text)
        )
        self.transport.close()
