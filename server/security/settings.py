"""The ``security`` settings section (TLS, device tokens, connection limits, flood control).

Defined here rather than in :mod:`server.config` so the security package owns its knobs; the
section is mounted as ``Settings.security`` (``XIAOZHI_SECURITY__TLS__ENABLED=true``).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

VAR_DIR = Path(__file__).resolve().parent.parent.parent / "var"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class TlsSettings(_Section):
    """``wss://`` and ``https://`` on the two ports; the OTA answer then hands out ``wss://``."""

    enabled: bool = False
    """Serve TLS on the WebSocket and HTTP ports (needs ``cert_file``/``key_file``)."""
    cert_file: Path = VAR_DIR / "tls" / "server.crt"
    """PEM certificate (chain); ``xiaozhi-server cert`` writes a self-signed one here."""
    key_file: Path = VAR_DIR / "tls" / "server.key"
    """PEM private key of ``cert_file`` (unencrypted)."""


class AuthSettings(_Section):
    """Per-device tokens: OTA hands each activated board a short-lived JWT for the handshake."""

    device_tokens: bool = False
    """Require a valid device JWT (or one of ``websocket.tokens``) at the WebSocket handshake;
    OTA hands it to boards that are bound (or to every board when activation is off)."""
    secret_file: Path = VAR_DIR / "jwt-secret"
    """HS256 signing key of the device tokens; created (random, mode 0600) on first use."""
    token_ttl_s: float = Field(default=24 * 3600.0, ge=60, le=30 * 86400)
    """Lifetime of a handed-out token; the board fetches a new one at every boot (OTA check)."""
    failed_auth_limit: int = Field(default=5, ge=1)
    """Refused handshakes from one IP within ``failed_auth_window_s`` before it is locked out."""
    failed_auth_window_s: float = Field(default=60.0, gt=0)
    """Window over which failed handshakes are counted (s)."""
    lockout_s: float = Field(default=60.0, gt=0)
    """A locked-out IP gets HTTP 429 for this long, even with a good token (s)."""


class LimitSettings(_Section):
    """Bounds on sockets and on what a client may send."""

    max_connections_per_ip: int = Field(default=64, ge=1)
    """Open sockets (handshaking included) from one IP beyond which handshakes get HTTP 503."""
    limit_loopback: bool = False
    """Count loopback peers (127.0.0.0/8, ::1) against ``max_connections_per_ip`` too. Off by
    default: behind a reverse proxy on the same machine (nginx) every board arrives from
    127.0.0.1, and local load tools open hundreds of sockets; the total limit still applies."""
    handshake_timeout_s: float = Field(default=10.0, gt=0)
    """A client that has not finished the WebSocket handshake by then is dropped (slow or silent
    TCP clients, half-open connections)."""
    max_audio_frames_per_s: float = Field(default=50.0, gt=0)
    """Sustained uplink audio frame rate allowed (a 60 ms board sends 16.7/s); beyond it frames
    are dropped and counted (``uplink-flood``)."""
    audio_burst_frames: int = Field(default=250, ge=1)
    """Frames allowed at once above the rate: 15 s of 60 ms audio, the longest utterance, may
    arrive in one burst (buffered audio after a wake word, the simulator's ``--fast``)."""
    max_audio_frame_bytes: int = Field(default=8192, ge=512)
    """Longer binary frames are not one Opus packet: dropped and counted (``uplink-oversized``)."""
    max_messages_per_s: float = Field(default=50.0, gt=0)
    """Sustained text message rate allowed; a client above it (past ``message_burst``) is closed
    with 1008."""
    message_burst: int = Field(default=200, ge=1)
    """Text messages allowed at once above the rate."""
    flood_close_after_frames: int = Field(default=2000, ge=1)
    """Close the session (1008) once this many audio frames were dropped for flooding."""


class SecuritySettings(_Section):
    """TLS, device tokens and limits (docs: README "Reliability and security")."""

    tls: TlsSettings = Field(default_factory=TlsSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
