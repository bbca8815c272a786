"""Start-up hints: the exact OTA and WebSocket URLs a board on the LAN should use.

Local IPv4 addresses come from the kernel (``SIOCGIFADDR`` per interface); nothing is sent on
the network and no DNS lookup is made.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import struct

from server.config import Settings
from server.http.app import ota_routes

logger = logging.getLogger(__name__)

_SIOCGIFADDR = 0x8915
_WILDCARD = {"", "0.0.0.0", "::"}


def local_ipv4_addresses() -> list[str]:
    """Primary IPv4 address of every interface (Linux), non-loopback first, 127.0.0.1 last."""
    found: list[str] = []
    try:
        import fcntl

        interfaces = socket.if_nameindex()
    except (ImportError, OSError, AttributeError):
        interfaces = []
    for _index, name in interfaces:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                packed = fcntl.ioctl(
                    sock.fileno(), _SIOCGIFADDR, struct.pack("256s", name[:15].encode())
                )
            except OSError:  # interface without IPv4
                continue
        found.append(socket.inet_ntoa(packed[20:24]))
    ordered = [a for a in found if not ipaddress.IPv4Address(a).is_loopback]
    return [*dict.fromkeys(ordered), "127.0.0.1"]


def board_urls(settings: Settings, websocket_port: int, http_port: int) -> list[str]:
    """One line per local IPv4 address: the OTA URL to enter in the board's Wi-Fi portal
    ("advanced" page) and the WebSocket URL the OTA endpoint will hand out."""
    host = settings.ota.host
    addresses = local_ipv4_addresses() if host in _WILDCARD else [host]
    ota_path = ota_routes(settings.ota.path)[0][-1]
    tls = settings.security.tls.enabled
    lines = []
    for address in addresses:
        ws = settings.ota.websocket_url or (
            f"{'wss' if tls else 'ws'}://{address}:{websocket_port}{settings.websocket.path}"
        )
        note = "  (this machine only)" if address.startswith("127.") else ""
        ota = f"{'https' if tls else 'http'}://{address}:{http_port}{ota_path}"
        lines.append(f"OTA URL {ota}  ->  WebSocket {ws}{note}")
    return lines
