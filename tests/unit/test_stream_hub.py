"""The hub only wakes readers; a change between snapshot and wait is never missed."""

from __future__ import annotations

import asyncio

from qruntime.service.stream_hub import StreamHub


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
