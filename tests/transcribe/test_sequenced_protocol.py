"""The sequenced protocol decoder and seq tracker, without sockets."""

from __future__ import annotations

import json

import pytest

from server.transcribe.sequenced_protocol import (
    AudioPacket,
    EndOfAudio,
    Heartbeat,
    SeqTracker,
    SequencedDecoder,
    SequencedProtocolError,
)


def header(seq: int, length: int = 4) -> str:
    return json.dumps({"type": "audio", "seq": seq, "timestamp": 120, "data_length": length})


def test_header_then_payload() -> None:
    decoder = SequencedDecoder()
    assert decoder.feed(header(3)) is None
    assert decoder.feed(b"\x01\x00\x02\x00") == AudioPacket(3, 120.0, b"\x01\x00\x02\x00")


def test_header_and_payload_in_one_binary_message() -> None:
    packet = SequencedDecoder().feed(header(0).encode() + b"\x00\x00\x01\x00")
    assert packet == AudioPacket(0, 120.0, b"\x00\x00\x01\x00")


def test_control_and_heartbeat() -> None:
    decoder = SequencedDecoder()
    assert decoder.feed('{"type":"heartbeat"}') == Heartbeat()
    assert decoder.feed('{"type":"control","action":"end"}') == EndOfAudio()


@pytest.mark.parametrize(
    ("messages", "code"),
    [
        (["not json"], "bad-json"),
        (["[" * 100_000], "bad-json"),
        (["[1]"], "bad-json"),
        (['{"type":"video"}'], "bad-type"),
        (['{"type":"control","action":"pause"}'], "bad-control"),
        ([header(-1)], "bad-seq"),
        ([header(0, 5000)], "bad-length"),
        ([header(0, 3)], "bad-length"),
        ([header(0), b"\x00\x00"], "bad-length"),
        ([header(0), header(1)], "missing-payload"),
        ([b"\x00\x00"], "missing-header"),
    ],
)
def test_bad_input_has_a_code(messages: list[str | bytes], code: str) -> None:
    decoder = SequencedDecoder()
    with pytest.raises(SequencedProtocolError) as error:
        for message in messages:
            decoder.feed(message)
    assert error.value.code == code


def test_tracker_counts_each_packet_once() -> None:
    tracker = SeqTracker()
    verdicts = [tracker.check(s) for s in (0, 1, 1, 3, 2, 0, 3)]
    assert verdicts == ["new", "new", "duplicate", "gap", "new", "duplicate", "new"]
    assert (tracker.last_seq, tracker.packets, tracker.duplicates, tracker.gaps) == (3, 4, 2, 1)
