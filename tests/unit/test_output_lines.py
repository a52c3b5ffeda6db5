"""iter_lines: a program's raw stdout/stderr bytes as log lines, however it writes them."""

from __future__ import annotations

import asyncio

import pytest

from qruntime.execution.output_lines import MAX_LINE_BYTES, iter_lines


async def lines_of(*chunks: bytes, **kwargs) -> list[str]:
    """All lines from a reader fed with ``chunks`` up front, then EOF."""
    reader = asyncio.StreamReader()
    for chunk in chunks:
        reader.feed_data(chunk)
    reader.feed_eof()
    return [line async for line in iter_lines(reader, **kwargs)]


async def lines_fed_slowly(*chunks: bytes, **kwargs) -> list[str]:
    """All lines when each chunk arrives only after the reader drained the previous one."""
    reader = asyncio.StreamReader()
    out: list[str] = []

    async def consume() -> None:
        async for line in iter_lines(reader, **kwargs):
            out.append(line)

    consumer = asyncio.create_task(consume())
    for chunk in chunks:
        reader.feed_data(chunk)
        for _ in range(5):
            await asyncio.sleep(0)
    reader.feed_eof()
    await asyncio.wait_for(consumer, timeout=5)
    return out


def test_default_limit_is_64_kib() -> None:
    assert MAX_LINE_BYTES == 64 * 1024


async def test_empty_stream_yields_nothing() -> None:
    assert await lines_of() == []


async def test_splits_on_newlines() -> None:
    assert await lines_of(b"one\ntwo\nthree\n") == ["one", "two", "three"]


async def test_keeps_empty_lines() -> None:
    assert await lines_of(b"a\n\n\nb\n") == ["a", "", "", "b"]
    assert await lines_of(b"\n") == [""]


async def test_lines_split_across_chunks_are_joined() -> None:
    chunks = (b"hel", b"lo\nwor", b"ld", b"\n", b"!\n")
    assert await lines_fed_slowly(*chunks) == ["hello", "world", "!"]
    assert await lines_of(*chunks) == ["hello", "world", "!"]


async def test_crlf_line_endings_are_stripped() -> None:
    assert await lines_of(b"windows\r\nstyle\r\n") == ["windows", "style"]
    assert await lines_fed_slowly(b"split\r", b"\nnext\r\n") == ["split", "next"]


async def test_lone_carriage_return_inside_a_line_is_kept() -> None:
    assert await lines_of(b"progress 10%\rprogress 20%\n") == ["progress 10%\rprogress 20%"]


async def test_trailing_partial_line_is_yielded_at_eof() -> None:
    assert await lines_of(b"complete\npartial") == ["complete", "partial"]
    assert await lines_of(b"no newline at all") == ["no newline at all"]
    assert await lines_of(b"partial with cr\r") == ["partial with cr"]


async def test_invalid_utf8_is_replaced() -> None:
    assert await lines_of(b"caf\xc3\xa9 \xff\xfe ok\n") == ["caf\u00e9 \ufffd\ufffd ok"]


async def test_multibyte_character_split_across_chunks_survives() -> None:
    snowman = "\u2603".encode()
    chunks = (b"a" + snowman[:1], snowman[1:2], snowman[2:] + b"b\n")
    assert await lines_fed_slowly(*chunks) == ["a\u2603b"]


async def test_long_line_is_cut_at_the_limit() -> None:
    line = bytes(range(97, 123)) * 100  # 2600 bytes, no newline until the end
    lines = await lines_of(line + b"\nafter\n", max_line_bytes=1000)
    assert lines == [
        line[:1000].decode(),
        line[1000:2000].decode(),
        line[2000:].decode(),
        "after",
    ]


async def test_long_line_fed_slowly_is_cut_at_the_limit() -> None:
    line = b"x" * 2500
    chunks = [line[i : i + 300] for i in range(0, len(line), 300)]
    lines = await lines_fed_slowly(*chunks, b"\n", max_line_bytes=1000)
    assert lines == ["x" * 1000, "x" * 1000, "x" * 500]


async def test_long_line_without_newline_at_eof() -> None:
    lines = await lines_of(b"y" * 2500, max_line_bytes=1000)
    assert lines == ["y" * 1000, "y" * 1000, "y" * 500]


async def test_line_one_byte_short_of_the_limit() -> None:
    assert await lines_of(b"z" * 999 + b"\nnext\n", max_line_bytes=1000) == ["z" * 999, "next"]


async def test_line_of_exactly_the_limit() -> None:
    assert await lines_of(b"z" * 1000 + b"\nnext\n", max_line_bytes=1000) == [
        "z" * 1000,
        "next",
    ]


async def test_default_limit_cuts_a_megabyte_line() -> None:
    line = b"m" * (2**20 + 5)
    lines = await lines_of(line + b"\n")
    assert "".join(lines) == line.decode()
    assert len(lines) == 17
    assert all(len(piece) == MAX_LINE_BYTES for piece in lines[:-1])
    assert lines[-1] == "m" * 5


async def test_no_piece_exceeds_the_limit_whatever_the_chunking() -> None:
    # the newline arrives in a later read than the start of the line
    assert await lines_fed_slowly(b"abc", b"def\n", max_line_bytes=4) == ["abcd", "ef"]
    assert await lines_fed_slowly(b"abc", b"defghij\nk", max_line_bytes=4) == [
        "abcd",
        "efgh",
        "ij",
        "k",
    ]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64, 1000])
async def test_every_chunking_gives_the_same_pieces(size: int) -> None:
    data = b"ab\n" + b"x" * 23 + b"\n\n" + b"y" * 7 + b"\r\n" + b"z" * 9
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    expected = ["ab", "x" * 8, "x" * 8, "x" * 7, "", "y" * 7, "z" * 8, "z"]
    assert await lines_fed_slowly(*chunks, max_line_bytes=8) == expected


async def test_line_of_exactly_the_limit_fed_slowly() -> None:
    lines = await lines_fed_slowly(b"z" * 1000, b"\nnext\n", max_line_bytes=1000)
    assert lines == ["z" * 1000, "next"]


async def test_crlf_line_of_exactly_the_limit() -> None:
    assert await lines_of(b"w" * 8 + b"\r\nnext\r\n", max_line_bytes=8) == ["w" * 8, "next"]
