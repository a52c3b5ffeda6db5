"""Regressions found in review: no event or result is lost to slow consumers, racing threads
or hostile frames, and no file descriptor leaks when the consumer goes away."""

from __future__ import annotations

import asyncio
import os
import textwrap
import uuid

from qruntime.domain.events import ErrorEvent, InterimEvent, LogEvent, ResultEvent
from qruntime.domain.job import JobReason
from qruntime.execution import JobRequest, LocalExecutor


def request(source: str, limit: float = 60) -> JobRequest:
    return JobRequest(
        job_id=uuid.uuid4().hex,
        source=textwrap.dedent(source),
        backend_name="aer_simulator",
        max_execution_time=limit,
    )


async def test_slow_consumer_loses_nothing():
    source = """
        def main(backend, user_messenger, **kwargs):
            for i in range(3000):
                print(i)
            for i in range(10):
                user_messenger.publish(i)
            return "done"
    """
    events = []
    async for event in LocalExecutor().run(request(source)):
        if not events:
            await asyncio.sleep(7)  # longer than the drain timeout
        events.append(event)
    assert sum(isinstance(e, LogEvent) for e in events) == 3000
    assert [e.seq for e in events if isinstance(e, InterimEvent)] == list(range(1, 11))
    assert events[-1] == ResultEvent('"done"')


async def test_publishing_threads_cannot_corrupt_or_replace_the_result():
    source = """
        import threading

        def main(backend, user_messenger, **kwargs):
            def spam():
                while True:
                    try:
                        user_messenger.publish("y" * 20000)
                    except RuntimeError:
                        return
            threading.Thread(target=spam, daemon=True).start()
            return "x" * 3_000_000
    """
    for _ in range(3):
        events = [e async for e in LocalExecutor().run(request(source))]
        assert isinstance(events[-1], ResultEvent), events[-1]
        assert len(events[-1].data) == 3_000_002


async def test_deeply_nested_frame_is_a_protocol_violation():
    source = """
        import struct, os

        def main(backend, user_messenger, **kwargs):
            body = b"[" * 100000
            os.write(user_messenger._event_fd, struct.pack(">I", len(body)) + body)
            return "unreachable in spirit"
    """
    events = [e async for e in LocalExecutor().run(request(source, limit=30))]
    assert isinstance(events[-1], ErrorEvent)
    assert events[-1].reason is JobReason.PROTOCOL_VIOLATION
    assert "nested too deeply" in events[-1].message


async def test_deeply_nested_result_is_a_clean_program_failure():
    source = """
        def main(backend, user_messenger, **kwargs):
            value = []
            for _ in range(100000):
                value = [value]
            return value
    """
    events = [e async for e in LocalExecutor().run(request(source))]
    assert events[-1].reason is JobReason.PROGRAM_FAILED
    assert "could not be encoded" in events[-1].message


async def test_consumer_leaving_at_once_leaks_no_descriptors():
    source = """
        import time

        def main(backend, user_messenger, **kwargs):
            time.sleep(60)
    """
    executor = LocalExecutor()
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(3):
        agen = executor.run(request(source))
        task = asyncio.ensure_future(agen.__anext__())
        while not executor.running_jobs():
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await agen.aclose()
    await asyncio.sleep(0.2)
    assert len(os.listdir("/proc/self/fd")) == before
    assert executor.running_jobs() == []
