"""Framed messages from a worker to its supervisor on a dedicated pipe (never stdout).

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON holding one
object with a ``type`` key. Anything else on the pipe is a protocol violation.
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
from typing import Any

HEADER = struct.Struct(">I")
#: Largest frame a supervisor accepts; bigger ones end the job with a protocol violation.
DEFAULT_MAX_FRAME_BYTES = 256 * 1024 * 1024

WORKER_MESSAGE_TYPES = frozenset({"started", "interim", "result", "error"})


class ProtocolError(Exception):
    """The bytes on the event pipe are not a well-formed message."""


def encode_frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return HEADER.pack(len(body)) + body


def write_frame(fd: int, message: dict[str, Any]) -> None:
    """Write one whole frame to a blocking file descriptor."""
    view = memoryview(encode_frame(message))
    while view:
        written = os.write(fd, view)
        view = view[written:]


def decode_body(body: bytes) -> dict[str, Any]:
    try:
        message = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"a message is not UTF-8 JSON ({exc})") from None
    except RecursionError:
        raise ProtocolError("a message is nested too deeply") from None
    if not isinstance(message, dict) or message.get("type") not in WORKER_MESSAGE_TYPES:
        raise ProtocolError(f"unexpected message {_preview(body)}")
    return message


async def read_frame(
    reader: asyncio.StreamReader, *, max_bytes: int = DEFAULT_MAX_FRAME_BYTES
) -> dict[str, Any] | None:
    """The next message, or None at a clean end of stream."""
    try:
        header = await reader.readexactly(HEADER.size)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise ProtocolError("the stream ended inside a frame header") from None
        return None
    (length,) = HEADER.unpack(header)
    if length > max_bytes:
        raise ProtocolError(f"a message of {length} bytes exceeds the limit of {max_bytes} bytes")
    try:
        body = await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        raise ProtocolError("the stream ended inside a message") from None
    return decode_body(body)


def _preview(body: bytes, limit: int = 80) -> str:
    text = body[:limit].decode("utf-8", errors="replace")
    return repr(text) + ("..." if len(body) > limit else "")
