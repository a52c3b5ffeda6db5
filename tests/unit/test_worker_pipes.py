"""Handing a worker its request: at once where the pipe takes it, the rest from a thread."""

from __future__ import annotations

import os
import threading

import pytest

from qruntime.execution.worker_pipes import send_and_close, send_what_fits


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def test_a_request_that_fits_the_pipe_is_written_and_closed_at_once() -> None:
    read, write = os.pipe()
    assert send_what_fits(write, b"x" * 1000) == b""
    assert _read_all(read) == b"x" * 1000  # end of file: the writing end is closed


def test_what_the_pipe_cannot_take_is_left_for_the_thread_and_arrives_whole() -> None:
    read, write = os.pipe()
    payload = os.urandom(1 << 20)  # more than a pipe's buffer
    rest = send_what_fits(write, payload)
    assert 0 < len(rest) < len(payload)
    assert os.get_blocking(write)  # the thread writes the rest the blocking way
    sender = threading.Thread(target=send_and_close, args=(write, rest))
    sender.start()
    assert _read_all(read) == payload
    sender.join()


def test_a_worker_gone_before_its_request_leaves_nothing_to_send() -> None:
    read, write = os.pipe()
    os.close(read)
    assert send_what_fits(write, b"job") == b""
    with pytest.raises(OSError):  # the writing end is closed
        os.fstat(write)
