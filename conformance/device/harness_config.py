"""What the device check's harness does and which timings it expects from the device."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class HarnessConfig:
    """What the server does and what timings it expects (seconds)."""

    ota_failures: int = 1
    """First N OTA POSTs get HTTP 500 (tests the retry)."""
    activation_pending: int = 1
    """With activation on: /activate answers 202 this many times, then 200."""
    activation: bool = True
    token: str = "conformance-token"
    protocol_version: int = 1
    sample_rate_hz: int = 24000
    respond_after_frames: int = 12
    pre_start_frames: int = 5
    burst_frames: int = 50
    paced_s: float = 1.2
    expected_retry_base_s: float = 10.0
    expected_activate_pending_s: float = 3.0
    expected_channel_timeout_s: float = 120.0
    omit_session_id_on: int = 2
    """Connection index (0-based) whose server hello has no session_id (it must be reused)."""
    host: str = "127.0.0.1"
    """Address to listen on (0.0.0.0: every interface, for a real board on the LAN)."""
    port: int = 0
    """OTA (HTTP) port; 0 picks a free one."""
    ws_port: int = 0
    """WebSocket port; 0 picks a free one."""


WILDCARD_HOSTS = ("", "0.0.0.0", "::")
OTA_PATH = "/xiaozhi/ota/"
WS_PATH = "/xiaozhi/v1/?from=conformance"
