"""The UDP audio datagram of the MQTT+UDP transport (protocol.md §4.3), sans-I/O.

Both directions use one layout, all fields big-endian::

    0     1      2-3          4-7    8-11          12-15     16 …
    type  flags  payload_len  ssrc   timestamp_ms  sequence  AES-128-CTR(Opus packet)

* The server hello's ``udp.nonce`` is the header *template*: byte 0 = 0x01 (the type), bytes 4–7
  an SSRC that names the session; a sender copies it and patches in ``payload_len``, the
  timestamp and its own sequence number (1, 2, 3 … per session).
* Encryption is AES-128-CTR with the key of ``udp.key`` and the packet's **own 16-byte header
  as the initial counter block** (a standard big-endian 128-bit increment for later blocks), as
  the firmware does (``psa_cipher_set_iv(header)``). CTR has no integrity check: a wrong key
  yields garbage of the right length, which :func:`opus_duration_ms` then rejects.
* A receiver accepts only ``type`` 0x01, ``payload_len == len(datagram) - 16`` and a sequence
  strictly above the last accepted one (:class:`SequenceGuard`); gaps are allowed.

Bad input raises :class:`UdpPacketError` subclasses (a :class:`~protocol.errors.ProtocolError`
with a stable ``code``), never ``struct.error``/``ValueError``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from enum import Enum
from typing import Final

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from protocol.errors import ProtocolError

HEADER_BYTES: Final = 16
PACKET_TYPE_AUDIO: Final = 0x01
KEY_BYTES: Final = 16
MAX_PAYLOAD_BYTES: Final = 0xFFFF
_HEADER = struct.Struct(">BBHIII")


class UdpPacketError(ProtocolError):
    """A datagram that is not a valid audio packet (or bad ``udp`` key material)."""

    code = "udp-packet-error"


class PacketTooShort(UdpPacketError):
    code = "udp-too-short"


class WrongPacketType(UdpPacketError):
    code = "udp-wrong-type"


class PayloadLengthMismatch(UdpPacketError):
    code = "udp-length-mismatch"


class InvalidKeyMaterial(UdpPacketError):
    """``udp.key``/``udp.nonce`` not 32 hex characters (16 bytes), or nonce byte 0 not 0x01."""

    code = "udp-invalid-key"


@dataclass(frozen=True, slots=True)
class UdpHeader:
    """The 16-byte header; ``timestamp_ms`` and ``sequence`` are unsigned 32-bit."""

    type: int = PACKET_TYPE_AUDIO
    flags: int = 0
    payload_len: int = 0
    ssrc: int = 0
    timestamp_ms: int = 0
    sequence: int = 0

    def pack(self) -> bytes:
        return _HEADER.pack(
            self.type,
            self.flags,
            self.payload_len,
            self.ssrc,
            self.timestamp_ms & 0xFFFFFFFF,
            self.sequence & 0xFFFFFFFF,
        )

    @classmethod
    def unpack(cls, data: bytes) -> UdpHeader:
        if len(data) < HEADER_BYTES:
            raise PacketTooShort(f"datagram of {len(data)} bytes is shorter than the header")
        return cls(*_HEADER.unpack_from(data))


@dataclass(frozen=True, slots=True)
class UdpKeys:
    """One session's AES key and header template (both 16 bytes)."""

    key: bytes
    nonce: bytes

    def __post_init__(self) -> None:
        if len(self.key) != KEY_BYTES or len(self.nonce) != HEADER_BYTES:
            raise InvalidKeyMaterial("udp key and nonce must be 16 bytes each")

    @classmethod
    def from_hex(cls, key_hex: object, nonce_hex: object) -> UdpKeys:
        """Parse the hello's hex strings (case-insensitive), as the firmware validates them."""
        try:
            if not isinstance(key_hex, str) or not isinstance(nonce_hex, str):
                raise ValueError("not strings")
            return cls(bytes.fromhex(key_hex), bytes.fromhex(nonce_hex))
        except ValueError as exc:
            raise InvalidKeyMaterial(f"udp key/nonce must be 32 hex characters: {exc}") from exc

    @classmethod
    def for_session(cls, key: bytes, ssrc: int) -> UdpKeys:
        """A server's keys: ``key`` (16 random bytes) and a nonce of type 0x01 with ``ssrc``."""
        return cls(key, UdpHeader(ssrc=ssrc).pack())

    @property
    def key_hex(self) -> str:
        return self.key.hex()

    @property
    def nonce_hex(self) -> str:
        return self.nonce.hex()

    @property
    def ssrc(self) -> int:
        return UdpHeader.unpack(self.nonce).ssrc


def crypt(key: bytes, header: bytes, data: bytes) -> bytes:
    """AES-128-CTR with ``header`` as the initial counter block (encrypt = decrypt)."""
    cipher = Cipher(algorithms.AES(key), modes.CTR(header)).encryptor()
    return cipher.update(data) + cipher.finalize()


def seal(keys: UdpKeys, payload: bytes, *, sequence: int, timestamp_ms: int = 0) -> bytes:
    """One datagram: the nonce with length/timestamp/sequence patched in, then the ciphertext."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadLengthMismatch(f"payload of {len(payload)} bytes does not fit a u16")
    template = UdpHeader.unpack(keys.nonce)
    header = replace(
        template, payload_len=len(payload), timestamp_ms=timestamp_ms, sequence=sequence
    ).pack()
    return header + crypt(keys.key, header, payload)


def parse(datagram: bytes) -> UdpHeader:
    """The header of a datagram after the receiver's checks (type 0x01, exact length)."""
    header = UdpHeader.unpack(datagram)
    if header.type != PACKET_TYPE_AUDIO:
        raise WrongPacketType(f"packet type 0x{header.type:02x}, expected 0x01")
    if header.payload_len != len(datagram) - HEADER_BYTES:
        raise PayloadLengthMismatch(
            f"payload_len {header.payload_len} but {len(datagram) - HEADER_BYTES} bytes follow"
        )
    return header


def open_payload(keys: UdpKeys, datagram: bytes) -> bytes:
    """Decrypt the payload of a datagram already checked by :func:`parse`."""
    return crypt(keys.key, datagram[:HEADER_BYTES], datagram[HEADER_BYTES:])


class Verdict(Enum):
    ACCEPTED = "accepted"
    GAP = "gap"
    """Accepted, but sequence numbers were skipped (lost or reordered packets)."""
    STALE = "stale"
    """Dropped: not above the last accepted sequence (old or duplicate)."""


@dataclass
class SequenceGuard:
    """The receiver's sequence rule: strictly increasing, the first must be ≥ 1."""

    last: int = 0
    accepted: int = 0
    stale: int = 0
    gaps: int = 0

    def check(self, sequence: int) -> Verdict:
        """Classify without recording (decrypt only what :meth:`check` accepts)."""
        if sequence <= self.last:
            return Verdict.STALE
        return Verdict.ACCEPTED if sequence == self.last + 1 else Verdict.GAP

    def accept(self, sequence: int) -> Verdict:
        verdict = self.check(sequence)
        if verdict is Verdict.STALE:
            self.stale += 1
        else:
            self.gaps += verdict is Verdict.GAP
            self.accepted += 1
            self.last = sequence
        return verdict


# Opus frame durations by TOC config (RFC 6716 §3.1), in tenths of a millisecond.
_CONFIG_FRAME_TENTHS: Final = [100, 200, 400, 600] * 3 + [100, 200] * 2 + [25, 50, 100, 200] * 4


def opus_duration_ms(packet: bytes) -> float | None:
    """Audio duration of a mono Opus packet from its TOC (RFC 6716 §3.1); None if malformed.

    Used to tell a packet decrypted with the wrong key (random bytes) from real Opus: the
    duration must be the one negotiated (60 ms). A 1–2 byte DTX packet is still valid Opus.
    """
    if not packet:
        return None
    toc = packet[0]
    if toc & 0x04:  # stereo: boards send and expect mono
        return None
    frame_tenths = _CONFIG_FRAME_TENTHS[toc >> 3]
    code = toc & 0x03
    if code == 0:
        frames = 1
    elif code in (1, 2):
        frames = 2
    else:
        if len(packet) < 2:
            return None
        frames = packet[1] & 0x3F
        if frames == 0 or frames * frame_tenths > 1200:
            return None
    return frames * frame_tenths / 10
