"""Seeded generators of hostile input for the socket fuzzer (tests/e2e/test_fuzz.py).

Every generator takes a ``random.Random`` and returns a :class:`Case`: what to send on one
connection and which outcomes are *defined* for it (the answer the server must give). Kinds:

* ``json``: every device message type (hello, listen start/stop/detect, abort, mcp, iot,
  goodbye, unknown) with fields deleted, retyped, oversized, renamed, nested, or the text cut;
  defined answer: ignored, the session stays (a hello right after is answered).
* ``binary``: frames of versions 1/2/3 with lying ``payload_size``, wrong versions and types,
  random bytes, empty frames, corrupt and truncated Opus; defined answer: dropped, session stays.
* ``order``: valid messages in random orders (audio before hello, stop before start, abort
  with no reply, a second hello, goodbye mid-turn); defined answer: the session stays.
* ``oversized``: a text or binary message over ``max_message_bytes``; defined answer: 1009.
* ``utf8``: a text frame that is not UTF-8; defined answer: 1007.
* ``framing``: unmasked client frames, reserved bits, unknown opcodes, fragmented or long
  control frames; defined answer: 1002.
* ``half_open``: TCP only, a partial handshake, or half a frame, then silence or a hang-up;
  defined answer: the server drops the socket (handshake deadline) and cleans up.
"""

from __future__ import annotations

import json
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ALIVE = "alive"
"""The session answered a hello sent after the input."""
DROPPED = "dropped"
"""The server closed the TCP connection (with or without a Close frame) on its own."""

MESSAGE_TYPES = ("hello", "listen", "abort", "mcp", "iot", "goodbye", "unknown")


@dataclass
class Case:
    kind: str
    frames: list[tuple[int, bytes]] = field(default_factory=list)
    """``(opcode, payload)`` sent as well-formed masked frames after the hello."""
    raw: bytes = b""
    """Bytes written as they are after the frames (framing violations, half frames)."""
    expect: frozenset[str] = frozenset({ALIVE})
    """Defined outcomes: ``alive``, ``dropped`` or ``close <code>``."""
    hello_first: bool = True
    handshake: str = "full"
    """``full``; ``none`` (TCP only) or ``partial`` (a request that never ends)."""
    hang_up: bool = False
    """Hang up right after sending (the server must notice and clean up)."""


def _hello(version: int = 1) -> dict[str, Any]:
    return {
        "type": "hello",
        "version": version,
        "features": {"mcp": True},
        "transport": "websocket",
        "audio_params": {
            "format": "opus",
            "sample_rate": 16000,
            "channels": 1,
            "frame_duration": 60,
        },
    }


def template(rng: random.Random, kind: str) -> dict[str, Any]:
    """A valid-looking message of ``kind`` (``session_id`` filled in or not)."""
    sid = rng.choice(["", "x", "00000000-0000-0000-0000-000000000000"])
    if kind == "hello":
        return _hello(rng.choice([1, 2, 3]))
    if kind == "listen":
        state = rng.choice(["start", "stop", "detect"])
        msg: dict[str, Any] = {"session_id": sid, "type": "listen", "state": state}
        if state == "start":
            msg["mode"] = rng.choice(["auto", "manual", "realtime"])
        if state == "detect":
            msg["text"] = "你好小智"
        return msg
    if kind == "abort":
        return {"session_id": sid, "type": "abort", "reason": "wake_word_detected"}
    if kind == "mcp":
        payload = {"jsonrpc": "2.0", "id": rng.randint(-5, 2**40), "result": {"tools": []}}
        return {"session_id": sid, "type": "mcp", "payload": payload}
    if kind == "iot":
        return {"session_id": sid, "type": "iot", "update": True, "states": [{"name": "Lamp"}]}
    if kind == "goodbye":
        return {"session_id": sid, "type": "goodbye"}
    return {"session_id": sid, "type": rng.choice(["weather", "", "HELLO", "listen ", "ü"])}


def junk_value(rng: random.Random, depth: int = 0) -> Any:
    """A JSON value of a random type: huge, tiny, empty, odd unicode, nested (depth ≤ 3)."""
    makers: list[Callable[[], Any]] = [
        lambda: None,
        lambda: True,
        lambda: rng.randint(-(2**63), 2**64),
        lambda: rng.random() * 10 ** rng.randint(-300, 300),
        lambda: "",
        lambda: "x" * rng.randint(1, 3000),
        lambda: "\u0000\ud7ff\u202e" + chr(rng.randint(0x80, 0xD7FF)),
        lambda: rng.choice(["start", "stop", "detect", "auto", "hello", "opus", "-1"]),
        lambda: 10**30,
    ]
    if depth < 3:
        makers += [
            lambda: [junk_value(rng, depth + 1) for _ in range(rng.randint(0, 4))],
            lambda: {
                str(rng.random()): junk_value(rng, depth + 1) for _ in range(rng.randint(0, 4))
            },
            lambda: {"type": junk_value(rng, depth + 1)},
        ]
    return rng.choice(makers)()


def mutate(rng: random.Random, message: dict[str, Any]) -> str:
    """One mutated message as text (sometimes not JSON at all)."""
    msg = json.loads(json.dumps(message))
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        keys = list(msg) or ["type"]
        if op == 0 and msg:
            msg.pop(rng.choice(keys))
        elif op in (1, 2):
            msg[rng.choice(keys)] = junk_value(rng)
        elif op == 3:
            msg[rng.choice(["audio_params", "features", "payload", "states", "mode", "zz"])] = (
                junk_value(rng)
            )
        elif op == 4 and "audio_params" in msg and isinstance(msg["audio_params"], dict):
            msg["audio_params"][rng.choice(["sample_rate", "frame_duration", "channels"])] = (
                junk_value(rng)
            )
        elif op == 5:
            msg = {k.upper() if rng.random() < 0.5 else k: v for k, v in msg.items()}
    text = json.dumps(msg, ensure_ascii=rng.random() < 0.5)
    cut = rng.random()
    if cut < 0.1:
        return text[: rng.randint(0, len(text))]
    if cut < 0.15:
        return "[" * rng.randint(1000, 20000)
    if cut < 0.2:
        return text + text
    return text


def json_case(rng: random.Random) -> Case:
    kinds = [rng.choice(MESSAGE_TYPES) for _ in range(rng.randint(1, 8))]
    return Case("json", frames=[(0x1, mutate(rng, template(rng, k)).encode()) for k in kinds])


def binary_frame(rng: random.Random, opus: list[bytes]) -> bytes:
    """One binary message of a random version whose header may lie."""
    packet = rng.choice(opus)
    roll = rng.randrange(8)
    if roll == 0:  # corrupt Opus: flipped bits
        data = bytearray(packet)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        packet = bytes(data)
    elif roll == 1:  # truncated Opus
        packet = packet[: rng.randint(0, len(packet) - 1)]
    elif roll == 2:
        packet = rng.randbytes(rng.randint(0, 400))
    version = rng.choice([1, 2, 3, 0, 4, 0xFFFF])
    size = len(packet) if rng.random() < 0.3 else rng.choice([0, 1, len(packet) + 1, 65535])
    if version == 1:
        return packet
    if version == 3:
        return struct.pack(">BBH", rng.choice([0, 1, 255]), 0, size & 0xFFFF) + packet
    header = struct.pack(">HHIII", version, rng.choice([0, 1, 7]), 0, rng.getrandbits(32), size)
    return header[: rng.choice([16, 16, 16, 3, 0])] + packet


def binary_case(rng: random.Random, opus: list[bytes]) -> Case:
    frames = [(0x2, binary_frame(rng, opus)) for _ in range(rng.randint(1, 30))]
    if rng.random() < 0.5:
        listen = {"session_id": "", "type": "listen", "state": "start", "mode": "manual"}
        frames.insert(0, (0x1, json.dumps(listen).encode()))
    return Case("binary", frames=frames)


def order_case(rng: random.Random, opus: list[bytes]) -> Case:
    pool = [
        (0x1, json.dumps(template(rng, "listen")).encode()),
        (0x1, json.dumps(template(rng, "abort")).encode()),
        (0x1, json.dumps(_hello(rng.choice([1, 2, 3]))).encode()),
        (0x1, json.dumps(template(rng, "mcp")).encode()),
        (0x1, json.dumps(template(rng, "goodbye")).encode()),
        (0x2, rng.choice(opus)),
        (0x2, b""),
    ]
    frames = [rng.choice(pool) for _ in range(rng.randint(2, 25))]
    return Case("order", frames=frames, hello_first=rng.random() < 0.7)


def oversized_case(rng: random.Random, max_bytes: int) -> Case:
    size = max_bytes + rng.randint(1, 4 * max_bytes)
    if rng.random() < 0.5:
        return Case("oversized", frames=[(0x1, b'"' + b"a" * size + b'"')], expect=_close(1009))
    return Case("oversized", frames=[(0x2, rng.randbytes(size))], expect=_close(1009))


def utf8_case(rng: random.Random) -> Case:
    bad = rng.choice([b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b'{"type":"\xe2\x82"}'])
    return Case("utf8", frames=[(0x1, bad)], expect=_close(1007))


def client_frame(
    opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, mask: bool = True
) -> bytes:
    """A client frame with any header bits (the fuzzer's own, may violate RFC 6455)."""
    first = (0x80 if fin else 0) | (rsv & 0x7) << 4 | opcode & 0xF
    n = len(payload)
    key = b"\x12\x34\x56\x78" if mask else b""
    bit = 0x80 if mask else 0
    if n < 126:
        head = bytes([first, bit | n])
    elif n < 65536:
        head = bytes([first, bit | 126]) + struct.pack(">H", n)
    else:
        head = bytes([first, bit | 127]) + struct.pack(">Q", n)
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload)) if mask else payload
    return head + key + body


def framing_case(rng: random.Random) -> Case:
    violation = rng.randrange(5)
    if violation == 0:
        raw = client_frame(0x1, b'{"type":"abort"}', mask=False)
    elif violation == 1:
        raw = client_frame(0x1, b"{}", rsv=rng.randint(1, 7))
    elif violation == 2:
        raw = client_frame(rng.choice([0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xF]), b"x")
    elif violation == 3:
        raw = client_frame(0x9, b"ping", fin=False)
    else:
        raw = client_frame(0x9, b"p" * 200)
    return Case("framing", raw=raw, expect=_close(1002))


def half_open_case(rng: random.Random) -> Case:
    roll = rng.randrange(4)
    if roll == 0:
        return Case("half_open", handshake="none", expect=frozenset({DROPPED}))
    if roll == 1:
        return Case("half_open", handshake="partial", expect=frozenset({DROPPED}))
    half = client_frame(0x2, rng.randbytes(300))[: rng.randint(1, 100)]
    return Case(
        "half_open", raw=half, hang_up=True, expect=frozenset({DROPPED, ALIVE, *_close(1002)})
    )


def _close(code: int) -> frozenset[str]:
    return frozenset({f"close {code}"})


def next_case(rng: random.Random, opus: list[bytes], max_bytes: int) -> Case:
    """One case; the mix leans on the cheap, message-level kinds."""
    roll = rng.random()
    if roll < 0.30:
        case = json_case(rng)
        if any(len(payload) > max_bytes for _, payload in case.frames):
            case.expect = _close(1009)  # a mutation grew past the limit: its defined answer
        return case
    if roll < 0.55:
        return binary_case(rng, opus)
    if roll < 0.70:
        return order_case(rng, opus)
    if roll < 0.77:
        return oversized_case(rng, max_bytes)
    if roll < 0.83:
        return utf8_case(rng)
    if roll < 0.92:
        return framing_case(rng)
    return half_open_case(rng)
