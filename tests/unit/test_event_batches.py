"""How a job's events are grouped before they are stored: order kept, interims batched, and a
batch that waits only when results come faster than the minimum interval.

The timed tests run on an event loop with a virtual clock: time moves only when every task
waits, by exactly as much as the next timer needs, so a loaded machine cannot reorder them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from qruntime.domain.events import InterimEvent, JobEvent, ResultEvent
from qruntime.service.event_batches import batched
from virtual_clock import run_virtual


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
    batches = run_virtual(_collect(_paced(events), min_interval=0.05, fast_gap=0.005))
    flat = [event for batch in batches for event in batch]
    assert flat == [event for _, event in events]
    assert batches == [
        [_interim(1)],  # the first result never waits
        [_interim(n) for n in range(2, 21)],  # 38 ms of results, inside one 50 ms interval
        [ResultEvent('"done"')],  # the result is not held back with interims
    ]


def test_a_fast_stream_longer_than_the_interval_goes_in_one_batch_per_interval() -> None:
    """100 results 2 ms apart (200 ms), batches at least 50 ms apart: the first alone, then
    one batch per interval (the second begins 2 ms late, with the second result)."""
    events = [(0.0, _interim(1))] + [(0.002, _interim(n)) for n in range(2, 101)]
    batches = run_virtual(_collect(_paced(events), min_interval=0.05, fast_gap=0.005))
    assert [event for batch in batches for event in batch] == [event for _, event in events]
    assert [len(batch) for batch in batches] == [1, 24, 25, 25, 25]


def test_results_at_a_steady_pace_go_one_by_one_without_waiting() -> None:
    """30 ms apart: not a fast stream, so the 100 ms interval never holds one back."""
    events = [(0.03, _interim(n)) for n in range(1, 6)]

    async def timed() -> list[tuple[float, int]]:
        loop = asyncio.get_running_loop()
        seen = []
        async for batch in batched(_paced(events), min_interval=0.1, fast_gap=0.005):
            seen.append((loop.time(), len(batch)))
        return seen

    seen = run_virtual(timed())
    assert [size for _, size in seen] == [1, 1, 1, 1, 1]
    # Each is yielded as it arrives, 30 ms after the last: 150 ms in all, not 400.
    assert [when for when, _ in seen] == pytest.approx([0.03, 0.06, 0.09, 0.12, 0.15], abs=1e-9)


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
