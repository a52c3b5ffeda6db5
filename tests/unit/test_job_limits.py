"""Per-job limits in the worker's messenger, and the rate limiter's backpressure."""

from __future__ import annotations

import asyncio
import contextlib
import os

import pytest

from qruntime.execution import rate
from qruntime.execution.limits import JobLimits
from qruntime.execution.messenger import UserMessenger
from qruntime.execution.protocol import read_frame


@pytest.fixture
def pipe():
    read_fd, write_fd = os.pipe()
    yield read_fd, write_fd
    for fd in (read_fd, write_fd):
        with contextlib.suppress(OSError):
            os.close(fd)


def test_an_interim_result_over_the_size_limit_raises_naming_the_setting(pipe):
    messenger = UserMessenger(pipe[1], JobLimits(max_interim_bytes=100))

    messenger.publish("x" * 90)
    with pytest.raises(ValueError, match=r"over the server's limit of 100 bytes .*MAX_INTERIM"):
        messenger.publish("x" * 200)
    messenger.publish("x" * 200, final=True)  # a final publish is the result: its own limit


def test_publishing_past_the_count_limit_raises_naming_the_setting(pipe):
    messenger = UserMessenger(pipe[1], JobLimits(max_interim_results=3))

    for i in range(3):
        messenger.publish(i)
    with pytest.raises(RuntimeError, match=r"more than 3 interim results.*MAX_INTERIM_RESULTS"):
        messenger.publish(4)


async def test_the_messages_within_the_limits_arrive_in_order(pipe):
    messenger = UserMessenger(pipe[1], JobLimits(max_interim_results=2))
    messenger.publish({"a": 1})
    messenger.publish({"a": 2})
    os.close(pipe[1])
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(pipe[0], "rb", buffering=0)
    )
    try:
        frames = [await read_frame(reader), await read_frame(reader), await read_frame(reader)]
    finally:
        transport.close()
    assert [(f["seq"], f["data"]) for f in frames[:2]] == [(1, '{"a": 1}'), (2, '{"a": 2}')]
    assert frames[2] is None


async def test_the_rate_limiter_sleeps_once_the_burst_is_spent(monkeypatch):
    now = [100.0]
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(rate.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(rate.asyncio, "sleep", fake_sleep)
    limiter = rate.RateLimiter(10)

    for _ in range(10):  # one second's burst
        await limiter.wait()
    assert slept == []
    for _ in range(5):
        await limiter.wait()
    assert slept == pytest.approx([0.1] * 5)
    now[0] += 2.0  # idle time refills the bucket, up to one burst
    for _ in range(10):
        await limiter.wait()
    assert len(slept) == 5
