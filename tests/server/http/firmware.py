"""What a real board sends to the OTA endpoint, byte for byte (protocol.md §2.2)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

MAC = "a0:b7:65:12:34:56"
CLIENT_ID = "7f1c2a9e-3b4d-4e5f-8a6b-1c2d3e4f5a6b"
SERIAL = "SN0123456789ABCDEF0123456789ABCD"  # 32 characters, from eFuse


def system_info_json(mac: str = MAC, client_id: str = CLIENT_ID) -> bytes:
    """``Board::GetSystemInfoJson()`` of a bread-compact-wifi board, keys in firmware order."""
    return (
        "{"
        '"version":2,"language":"en-US","flash_size":16777216,'
        '"minimum_free_heap_size":"7265024",'
        f'"mac_address":"{mac}","uuid":"{client_id}","chip_model_name":"esp32s3",'
        '"chip_info":{"model":9,"cores":2,"revision":2,"features":18},'
        '"application":{"name":"xiaozhi","version":"2.4.2",'
        '"compile_time":"Nov 15 2026T10:20:30Z","idf_version":"v5.4.1",'
        '"elf_sha256":"' + "ab" * 32 + '"},'
        '"partition_table":['
        '{"label":"nvs","type":1,"subtype":2,"address":36864,"size":16384},'
        '{"label":"otadata","type":1,"subtype":0,"address":53248,"size":8192},'
        '{"label":"ota_0","type":0,"subtype":16,"address":1048576,"size":6291456},'
        '{"label":"ota_1","type":0,"subtype":17,"address":7340032,"size":6291456}],'
        '"ota":{"label":"ota_0"},'
        '"display":{"monochrome":false,"width":128,"height":32},'
        '"board":{"type":"bread-compact-wifi","name":"bread-compact-wifi",'
        '"manufacturer":"xiaozhi","ssid":"home","rssi":-52,"channel":6,'
        f'"ip":"192.168.1.77","mac":"{mac}"}}'
        "}"
    ).encode()


async def firmware_post(
    port: int,
    path: str,
    body: bytes,
    *,
    mac: str = MAC,
    client_id: str = CLIENT_ID,
    serial: str | None = None,
) -> tuple[int, dict[str, Any]]:
    """POST like the firmware: Host first, custom headers sorted by lowercased name, then
    Content-Length and Connection: close. Returns (status, JSON body)."""
    headers = [
        f"Host: 127.0.0.1:{port}",
        "Accept-Language: en-US",
        f"Activation-Version: {'2' if serial else '1'}",
        f"Client-Id: {client_id}",
        "Content-Type: application/json",
        f"Device-Id: {mac}",
        *([f"Serial-Number: {serial}"] if serial else []),
        "User-Agent: bread-compact-wifi/2.4.2",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    head = f"POST {path} HTTP/1.1\r\n" + "\r\n".join(headers) + "\r\n\r\n"
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head.encode() + body)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    status_line, _, rest = raw.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 "), status_line
    response_head, _, payload = rest.partition(b"\r\n\r\n")
    assert b"application/json" in response_head.lower()
    return int(status_line.split()[1]), json.loads(payload)
