"""The SDK's one alarm thread: alarms ring at their time, cancelled ones never, on one thread."""

import threading
import time

from qruntime.client import alarms


def test_an_alarm_rings_at_its_time_and_a_cancelled_one_never():
    rung: list[tuple[str, float]] = []
    done = threading.Event()
    start = time.monotonic()
    cancelled = alarms.call_at(start + 0.1, lambda: rung.append(("cancelled", time.monotonic())))
    alarms.call_at(start + 0.2, lambda: (rung.append(("kept", time.monotonic())), done.set()))
    cancelled.cancel()
    assert done.wait(5)
    (name, when), *rest = rung
    assert name == "kept" and not rest
    assert start + 0.2 <= when < start + 0.2 + alarms.SLACK_SECONDS + 1.0


def test_alarms_share_one_thread_and_an_earlier_one_wakes_it():
    rung = threading.Event()
    far = alarms.call_at(time.monotonic() + 3600, lambda: None)
    before = threading.active_count()
    start = time.monotonic()
    for _ in range(50):
        alarms.call_at(start + 3000, lambda: None).cancel()
    alarms.call_at(start + 0.05, rung.set)
    assert rung.wait(5)
    assert time.monotonic() - start < 1.0
    assert threading.active_count() == before
    far.cancel()
