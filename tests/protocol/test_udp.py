"""The UDP audio datagram: layout, AES-128-CTR with the header as counter, sequence rule."""

from __future__ import annotations

import os

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from protocol import udp
from protocol.opus import OpusEncoder

KEY = bytes.fromhex("00112233445566778899aabbccddeeff")
NONCE = bytes.fromhex("01000000123456780000000000000000")


def test_header_is_the_nonce_with_length_timestamp_and_sequence_patched() -> None:
    keys = udp.UdpKeys(KEY, NONCE)
    datagram = udp.seal(keys, b"\xaa" * 5, sequence=7, timestamp_ms=0x01020304)
    assert datagram[:16].hex() == "01000005123456780102030400000007"
    assert len(datagram) == 16 + 5
    header = udp.parse(datagram)
    assert (header.ssrc, header.sequence, header.timestamp_ms) == (0x12345678, 7, 0x01020304)


def test_payload_is_aes_ctr_with_the_header_as_initial_counter_block() -> None:
    keys = udp.UdpKeys(KEY, NONCE)
    payload = bytes(range(40))  # three AES blocks: the counter increments big-endian
    datagram = udp.seal(keys, payload, sequence=1)
    header = datagram[:16]
    reference = Cipher(algorithms.AES(KEY), modes.CTR(header)).decryptor()
    assert reference.update(datagram[16:]) + reference.finalize() == payload
    assert udp.open_payload(keys, datagram) == payload


def test_counter_block_wraps_like_a_128_bit_big_endian_integer() -> None:
    header = bytes.fromhex("01000020ffffffffffffffffffffffff")
    stream = udp.crypt(KEY, header, bytes(32))
    block = Cipher(algorithms.AES(KEY), modes.ECB()).encryptor()
    first = block.update(header)
    second = block.update(((int.from_bytes(header, "big") + 1) % 2**128).to_bytes(16, "big"))
    assert stream == first + second


@pytest.mark.parametrize(
    ("datagram", "error"),
    [
        (b"\x01" * 15, udp.PacketTooShort),
        (bytes.fromhex("02000000") + bytes(12), udp.WrongPacketType),
        (bytes.fromhex("01000003") + bytes(12) + b"\x00", udp.PayloadLengthMismatch),
    ],
)
def test_receiver_rejects_bad_datagrams_with_a_code(datagram: bytes, error: type) -> None:
    with pytest.raises(error) as info:
        udp.parse(datagram)
    assert info.value.code.startswith("udp-")


def test_key_material_from_hex_is_case_insensitive_and_checked() -> None:
    keys = udp.UdpKeys.from_hex(KEY.hex().upper(), NONCE.hex())
    assert keys.key == KEY and keys.ssrc == 0x12345678
    for bad in ("00", "zz" * 16, None):
        with pytest.raises(udp.InvalidKeyMaterial):
            udp.UdpKeys.from_hex(bad, NONCE.hex())


def test_session_keys_put_type_and_ssrc_in_the_nonce() -> None:
    keys = udp.UdpKeys.for_session(os.urandom(16), 0xCAFE0001)
    assert keys.nonce[0] == 0x01 and keys.ssrc == 0xCAFE0001 and len(keys.nonce_hex) == 32


def test_sequence_guard_drops_old_and_duplicate_counts_gaps() -> None:
    guard = udp.SequenceGuard()
    assert guard.check(0) is udp.Verdict.STALE  # the first packet must be >= 1
    verdicts = [guard.accept(s) for s in (1, 2, 2, 5, 3, 6)]
    V = udp.Verdict
    assert verdicts == [V.ACCEPTED, V.ACCEPTED, V.STALE, V.GAP, V.STALE, V.ACCEPTED]
    assert (guard.last, guard.accepted, guard.stale, guard.gaps) == (6, 4, 2, 1)


def test_opus_duration_of_real_packets_and_garbage() -> None:
    for rate in (16000, 24000):
        encoder = OpusEncoder(rate, 60)
        t = np.arange(rate * 60 // 1000) / rate
        pcm = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
        assert udp.opus_duration_ms(encoder.encode(pcm)) == 60
    assert udp.opus_duration_ms(b"") is None
    # Random bytes (a wrong key) rarely look like a 60 ms mono packet.
    rng = np.random.default_rng(1)
    hits = sum(udp.opus_duration_ms(rng.bytes(80)) == 60 for _ in range(2000))
    assert hits < 2000 * 0.1
