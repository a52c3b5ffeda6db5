"""How a job's events are grouped before they are stored: order kept, interims batched, and a
batch that waits only when results come faster than the minimum interval."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence

import pytest

from qruntime.domain.events import InterimEvent, JobEvent, ResultEvent
from qruntime.service.event_batches import batched


async def _paced(events: Sequence[tuple[float, JobEvent]]) -> AsyncIterator[JobEvent]:
    """Each event after its delay (seconds after the previous one)."""
    for delay, event in events:
        await asyncio.sleep(delay)
        yield event


async def _collect(source: AsyncIterator[JobEvent], **options: float) -> list[list[JobEvent]]:
    return [batch async for batch in batched(source, **options)]


def _interim(seq: int) -> InterimEvent:
    return InterimEvent(seq, f'{{"i": {seq}}}')


def test_results_faster_than_the_interval_share_a_batch_and_keep_their_order() -> None:
    events = [(0.0, _interim(1))] + [(0.002, _interim(n)) for n in range(2, 21)]
    events.append((0.0, ResultEvent('"done"')))
    batches = asyncio.run(_collect(_paced(events), min_interval=0.05, fast_gap=0.005))
    flat = [event for batch in batches for event in batch]
    assert flat == [event for _, event in events]
    assert batches[0] == [_interim(1)]  # the first result never waits
    assert batches[-1] == [ResultEvent('"done"')]  # the result is not held back with interims
    assert len(batches) <= 4, [len(b) for b in batches]  # ~40 ms of results, 50 ms apart


def test_results_at_a_steady_pace_go_one_by_one_without_waiting() -> None:
    """30 ms apart: not a fast stream, so the 100 ms interval never holds one back."""
    events = [(0.03, _interim(n)) for n in range(1, 6)]

    async def timed() -> list[tuple[float, int]]:
        seen = []
        async for batch in batched(_paced(events), min_interval=0.1, fast_gap=0.005):
            seen.append((time.monotonic(), len(batch)))
        return seen

    started = time.monotonic()
    seen = asyncio.run(timed())
    assert [size for _, size in seen] == [1, 1, 1, 1, 1]
    # Each is yielded as it arrives, ~30 ms after the last: 150 ms in all, not 400.
    assert seen[-1][0] - started == pytest.approx(0.15, abs=0.06)


def test_an_error_from_the_source_is_raised_after_what_came_before() -> None:
    async def failing() -> AsyncIterator[JobEvent]:
        yield _interim(1)
        raise RuntimeError("executor broke")

    async def run() -> list[list[JobEvent]]:
        got = []
        with pytest.raises(RuntimeError, match="executor broke"):
            async for batch in batched(failing()):
                got.append(batch)
        return got

    assert asyncio.run(run()) == [[_interim(1)]]
