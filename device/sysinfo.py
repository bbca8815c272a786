"""``Board::GetSystemInfoJson()``: the OTA request body, key order and types as in §2.2.

The firmware builds this string by hand: compact, ``minimum_free_heap_size`` as a quoted number.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from device.identity import DeviceIdentity

FLASH_SIZE_BYTES = 16 * 1024 * 1024
MIN_FREE_HEAP_BYTES = 8_338_592
PARTITIONS: list[tuple[str, int, int, int, int]] = [
    ("nvs", 1, 2, 0x9000, 0x4000),
    ("otadata", 1, 0, 0xD000, 0x2000),
    ("phy_init", 1, 1, 0xF000, 0x1000),
    ("model", 1, 130, 0x10000, 0xF0000),
    ("ota_0", 0, 16, 0x100000, 0x600000),
    ("ota_1", 0, 17, 0x700000, 0x600000),
]


def system_info(identity: DeviceIdentity) -> dict[str, Any]:
    """The system-info object in the firmware's key order (Wi-Fi board, not in config mode)."""
    sha = hashlib.sha256(f"xiaozhi-{identity.firmware_version}".encode()).hexdigest()
    return {
        "version": 2,
        "language": identity.language,
        "flash_size": FLASH_SIZE_BYTES,
        "minimum_free_heap_size": str(MIN_FREE_HEAP_BYTES),
        "mac_address": identity.mac,
        "uuid": identity.uuid,
        "chip_model_name": "esp32s3",
        "chip_info": {"model": 9, "cores": 2, "revision": 2, "features": 18},
        "application": {
            "name": "xiaozhi",
            "version": identity.firmware_version,
            "compile_time": "Aug  8 2026T10:00:00Z",
            "idf_version": "v5.4.2",
            "elf_sha256": sha,
        },
        "partition_table": [
            {"label": label, "type": t, "subtype": st, "address": addr, "size": size}
            for label, t, st, addr, size in PARTITIONS
        ],
        "ota": {"label": "ota_0"},
        "display": {"monochrome": False, "width": 240, "height": 240},
        "board": {
            "type": identity.board_name,
            "name": identity.board_name,
            "manufacturer": "xiaozhi-py simulator",
            "ssid": "xiaozhi-sim",
            "rssi": -55,
            "channel": 6,
            "ip": "127.0.0.1",
            "mac": identity.mac,
        },
    }


def system_info_json(identity: DeviceIdentity) -> str:
    """The body as the board sends it (compact, non-ASCII kept)."""
    return json.dumps(system_info(identity), separators=(",", ":"), ensure_ascii=False)
