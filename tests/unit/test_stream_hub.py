"""The hub wakes readers (a change between snapshot and wait is never missed) and keeps the
interims just stored for readers that are caught up, never with a gap."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from qruntime.domain.job import JobStatus
from qruntime.service.job_end import JobEnd
from qruntime.service.stream_hub import RECENT_BYTES, RECENT_INTERIMS, EndSeen, StreamHub
from qruntime.storage import StoredInterim


async def test_change_after_snapshot_wakes_at_once():
    hub = StreamHub()
    watch = hub.watch("j1")
    watch.snapshot()
    hub.notify("j1")
    assert await watch.wait(timeout=0.01) is True


async def test_waits_until_notified():
    hub = StreamHub()
    watch = hub.watch("j1")
    watch.snapshot()
    waiting = asyncio.create_task(watch.wait(timeout=5))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    hub.notify("j1")
    assert await waiting is True


async def test_times_out_without_a_change_and_ignores_other_jobs():
    hub = StreamHub()
    watch = hub.watch("j1")
    watch.snapshot()
    hub.notify("j2")
    assert await watch.wait(timeout=0.02) is False


async def test_every_watcher_of_a_job_wakes():
    hub = StreamHub()
    watches = [hub.watch("j1") for _ in range(3)]
    for watch in watches:
        watch.snapshot()
    waiting = [asyncio.create_task(w.wait(timeout=5)) for w in watches]
    await asyncio.sleep(0.01)
    hub.notify("j1")
    assert await asyncio.gather(*waiting) == [True, True, True]


async def test_no_state_is_left_for_finished_jobs():
    """The scheduler forgets a job after its last notify; timeouts leave no empty sets."""
    hub = StreamHub()
    for k in range(50):
        watch = hub.watch(f"j-{k}")
        watch.snapshot()
        assert await watch.wait(timeout=0.001) is False
        hub.notify(f"j-{k}")
        hub.forget(f"j-{k}")
    assert hub._versions == {} and hub._waiters == {}


async def test_a_change_is_not_missed_when_the_job_is_forgotten_between_snapshot_and_wait():
    """The reader is busy reading the database (no waiter registered) while the job ends:
    notified, then forgotten. Its next wait must not sleep through that."""
    hub = StreamHub()
    fresh = hub.watch("j1")  # snapshot before the job was ever stamped
    hub.notify("j1")
    seasoned = hub.watch("j1")  # snapshot holding a stamp
    hub.notify("j1")
    hub.forget("j1")
    assert await fresh.wait(timeout=0.01) is True and fresh.state_changed
    assert await seasoned.wait(timeout=0.01) is True and seasoned.state_changed
    # Forgotten, then woken again: the new stamp never repeats the one a reader holds.
    hub.notify("j2")
    held = hub.watch("j2")
    hub.forget("j2")
    hub.notify("j2")
    assert await held.wait(timeout=0.01) is True
    held.snapshot()
    assert await held.wait(timeout=0.01) is False


def _interims(*seqs: int, size: int = 10) -> list[StoredInterim]:
    now = datetime.now(UTC)
    return [StoredInterim("j1", seq, "x" * size, now) for seq in seqs]


def test_recent_interims_are_handed_out_only_without_gaps():
    hub = StreamHub()
    assert hub.recent("j1", 0) is None  # nothing kept: read the database
    hub.notify_interims("j1", _interims(1, 2, 3))
    assert [i.seq for i in hub.recent("j1", 0)] == [1, 2, 3]
    assert [i.seq for i in hub.recent("j1", 2)] == [3]
    assert hub.recent("j1", 3) == []
    hub.notify_interims("j1", _interims(5))  # 4 is missing: what was kept is dropped
    assert hub.recent("j1", 3) is None
    assert [i.seq for i in hub.recent("j1", 4)] == [5]
    hub.forget("j1")
    assert hub.recent("j1", 4) is None


def test_recent_interims_are_bounded_by_count_and_bytes():
    hub = StreamHub()
    hub.notify_interims("j1", _interims(*range(1, RECENT_INTERIMS + 11)))
    assert hub.recent("j1", 0) is None  # the first ten were let go
    assert len(hub.recent("j1", 10)) == RECENT_INTERIMS
    big = RECENT_BYTES // 3 + 1
    hub.notify_interims(
        "j2", [StoredInterim("j2", s, "x" * big, datetime.now(UTC)) for s in (1, 2, 3)]
    )
    assert hub.recent("j2", 0) is None
    assert [i.seq for i in hub.recent("j2", 1)] == [2, 3]


async def test_stored_interims_wake_readers_without_a_state_change():
    hub = StreamHub()
    watch = hub.watch("j1")
    watch.snapshot()
    hub.notify_interims("j1", _interims(1))
    assert await watch.wait(timeout=0.01) is True
    assert watch.state_changed is False
    hub.notify("j1")
    assert watch.state_changed is True


def _end(last_seq: int) -> JobEnd:
    return JobEnd(JobStatus.DONE, None, None, '"ok"', last_seq)


async def test_an_end_is_handed_to_the_readers_waiting_then_and_kept_by_nobody():
    hub = StreamHub()
    hub.notify_interims("j1", _interims(1, 2))
    waiting, busy = hub.watch("j1"), hub.watch("j1")  # busy: reading the database meanwhile
    woken = asyncio.create_task(waiting.wait(timeout=5))
    await asyncio.sleep(0)
    hub.notify_ended("j1", _end(2))
    assert await woken is True and waiting.ended is not None
    assert waiting.ended.end == _end(2) and [i.seq for i in waiting.ended.kept] == [1, 2]
    assert await busy.wait(timeout=0.01) is True and busy.ended is None  # it reads instead
    assert busy.state_changed
    later = hub.watch("j1")  # a job id may be used again once its job is deleted
    hub.notify("j1")
    assert await later.wait(timeout=0.01) is True and later.ended is None


def test_an_end_hands_out_interims_only_when_it_holds_every_one_after_the_point():
    kept = tuple(_interims(3, 4, 5))
    assert [i.seq for i in EndSeen(_end(5), kept).interims_after(2)] == [3, 4, 5]
    assert [i.seq for i in EndSeen(_end(5), kept).interims_after(4)] == [5]
    assert EndSeen(_end(5), kept).interims_after(5) == []
    assert EndSeen(_end(2), ()).interims_after(7) == []  # resumed past every one there is
    assert EndSeen(_end(0), ()).interims_after(0) == []  # a job without interims
    assert EndSeen(_end(5), kept).interims_after(1) is None  # 2 is not kept: read it
    assert EndSeen(_end(6), kept).interims_after(2) is None  # 6 stored by another process
    assert EndSeen(_end(5), ()).interims_after(2) is None
