"""Frames on the worker's event pipe: round trips and every way a stream can be malformed."""

from __future__ import annotations

import asyncio
import json
import os
import struct

import pytest

from qruntime.execution.protocol import (
    DEFAULT_MAX_FRAME_BYTES,
    HEADER,
    WORKER_MESSAGE_TYPES,
    ProtocolError,
    decode_body,
    encode_frame,
    read_frame,
    write_frame,
)


def fed_reader(*chunks: bytes, eof: bool = True) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    for chunk in chunks:
        reader.feed_data(chunk)
    if eof:
        reader.feed_eof()
    return reader


def raw_frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


async def read_all(reader: asyncio.StreamReader, **kwargs) -> list[dict]:
    messages = []
    while (message := await read_frame(reader, **kwargs)) is not None:
        messages.append(message)
    return messages


MESSAGES = [
    {"type": "started"},
    {"type": "interim", "seq": 1, "data": '{"iteration": 0}'},
    {"type": "interim", "seq": 2, "data": '"h\u00e9llo \u2603 \\ud83d"'},
    {"type": "result", "data": json.dumps({"__type__": "ndarray", "__value__": "AAAA"})},
    {"type": "error", "message": "Traceback ...\nKeyError: 'x'\n\u00fcml\u00e4ut"},
]


def test_header_is_four_bytes_big_endian() -> None:
    assert HEADER.size == 4
    frame = encode_frame({"type": "started"})
    body = b'{"type":"started"}'
    assert frame == b"\x00\x00\x00\x12" + body
    assert len(body) == 0x12


def test_encode_frame_keeps_non_ascii_as_utf8() -> None:
    frame = encode_frame({"type": "error", "message": "\u2603"})
    (length,) = HEADER.unpack(frame[:4])
    assert length == len(frame) - 4
    assert "\u2603".encode() in frame[4:]


async def test_frames_round_trip_through_a_stream_reader() -> None:
    reader = fed_reader(b"".join(encode_frame(m) for m in MESSAGES))
    assert await read_all(reader) == MESSAGES


async def test_frames_round_trip_when_fed_one_byte_at_a_time() -> None:
    data = b"".join(encode_frame(m) for m in MESSAGES)
    reader = asyncio.StreamReader()

    async def feed() -> None:
        for i in range(len(data)):
            reader.feed_data(data[i : i + 1])
            await asyncio.sleep(0)
        reader.feed_eof()

    feeder = asyncio.create_task(feed())
    assert await read_all(reader) == MESSAGES
    await feeder


async def test_large_frame_round_trips() -> None:
    message = {"type": "result", "data": "x" * (3 * 2**20)}
    reader = fed_reader(encode_frame(message))
    assert await read_frame(reader) == message
    assert await read_frame(reader) is None


async def test_write_frame_writes_readable_frames_to_a_pipe() -> None:
    r, w = os.pipe()
    try:
        for message in MESSAGES:
            write_frame(w, message)
    finally:
        os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    assert await read_all(fed_reader(data)) == MESSAGES


async def test_clean_eof_returns_none() -> None:
    assert await read_frame(fed_reader()) is None
    reader = fed_reader(encode_frame({"type": "started"}))
    assert await read_frame(reader) == {"type": "started"}
    assert await read_frame(reader) is None
    assert await read_frame(reader) is None


@pytest.mark.parametrize("partial", [b"\x00", b"\x00\x00", b"\x00\x00\x00"])
async def test_truncated_header_raises(partial: bytes) -> None:
    with pytest.raises(ProtocolError, match=r"^the stream ended inside a frame header$"):
        await read_frame(fed_reader(partial))


async def test_truncated_header_after_a_good_frame_raises() -> None:
    reader = fed_reader(encode_frame({"type": "started"}) + b"\x00\x00")
    assert await read_frame(reader) == {"type": "started"}
    with pytest.raises(ProtocolError, match="inside a frame header"):
        await read_frame(reader)


@pytest.mark.parametrize("cut", [0, 1, 10])
async def test_truncated_body_raises(cut: int) -> None:
    frame = encode_frame({"type": "interim", "seq": 1, "data": "0123456789abcdef"})
    with pytest.raises(ProtocolError, match=r"^the stream ended inside a message$"):
        await read_frame(fed_reader(frame[: 4 + cut]))


async def test_oversize_length_raises_before_reading_the_body() -> None:
    # no body at all: the length alone must be refused, not waited for
    reader = fed_reader(struct.pack(">I", 101), eof=False)
    with pytest.raises(
        ProtocolError, match=r"^a message of 101 bytes exceeds the limit of 100 bytes$"
    ):
        await asyncio.wait_for(read_frame(reader, max_bytes=100), timeout=5)


async def test_frame_at_exactly_the_limit_is_accepted() -> None:
    frame = encode_frame({"type": "started"})
    limit = len(frame) - 4
    assert await read_frame(fed_reader(frame), max_bytes=limit) == {"type": "started"}
    with pytest.raises(ProtocolError, match="exceeds the limit"):
        await read_frame(fed_reader(frame), max_bytes=limit - 1)


async def test_default_limit_refuses_huge_length() -> None:
    reader = fed_reader(b"\xff\xff\xff\xff", eof=False)
    with pytest.raises(ProtocolError) as info:
        await asyncio.wait_for(read_frame(reader), timeout=5)
    assert str(info.value) == (
        f"a message of {0xFFFFFFFF} bytes exceeds the limit of {DEFAULT_MAX_FRAME_BYTES} bytes"
    )


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"type": "started"', b"", b"\xff\xfe garbage", b'{"type": "started"} x'],
)
async def test_non_json_body_raises(body: bytes) -> None:
    with pytest.raises(ProtocolError, match=r"^a message is not UTF-8 JSON "):
        await read_frame(fed_reader(raw_frame(body)))


@pytest.mark.parametrize("body", [b"[1, 2]", b'"started"', b"42", b"null", b"true"])
async def test_non_object_raises(body: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        await read_frame(fed_reader(raw_frame(body)))
    assert str(info.value) == f"unexpected message {body.decode()!r}"


@pytest.mark.parametrize(
    "message",
    [{"type": "hello"}, {"type": None}, {"kind": "started"}, {}, {"type": 1}, {"type": "log"}],
)
async def test_unknown_or_missing_type_raises(message: dict) -> None:
    body = json.dumps(message).encode()
    with pytest.raises(ProtocolError) as info:
        await read_frame(fed_reader(raw_frame(body)))
    assert str(info.value).startswith("unexpected message ")
    assert repr(body.decode()) in str(info.value)


def test_unexpected_message_preview_is_shortened() -> None:
    body = json.dumps({"type": "nope", "pad": "z" * 500}).encode()
    with pytest.raises(ProtocolError) as info:
        decode_body(body)
    text = str(info.value)
    assert text.endswith("...")
    assert len(text) < 150
    assert "zzzz" in text


def test_worker_message_types() -> None:
    assert frozenset({"started", "interim", "result", "error"}) == WORKER_MESSAGE_TYPES
    for kind in WORKER_MESSAGE_TYPES:
        assert decode_body(json.dumps({"type": kind}).encode()) == {"type": kind}
