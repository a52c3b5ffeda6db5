"""``cancel_result_streaming()`` then ``stream_results()``, again and again while a job publishes
2,000 interim results: the SDK's callback gets every one exactly once and in order.

Streaming is stopped both from outside, at random moments, and from inside the callback, where
the next events already sit read in the client's buffer: a client that counted an event as seen
when it read it, not when the callback had it, would lose one there on every restart.
"""

from __future__ import annotations

import contextlib
import random
import time
from typing import Any

from qruntime import RuntimeService
from qruntime.client.exceptions import RuntimeInvalidStateError
from server_harness import ServerProcess
from server_support import PROGRAMS

INTERIMS = 2000
STOP_EVERY = 97


def test_stopping_and_restarting_the_sdk_stream_loses_and_repeats_nothing(
    server: ServerProcess, user_token: str
) -> None:
    received: list[int] = []
    stops = {"inside": 0, "outside": 0, "restarts": 0}
    randomness = random.Random(18)

    with RuntimeService(url=server.url, token=user_token) as service:
        program = service.upload_program(
            data=str(PROGRAMS / "slow_publisher.py"),
            metadata=str(PROGRAMS / "slow_publisher.json"),
        )
        job = None

        def callback(job_id: str, interim: Any) -> None:
            received.append(interim["i"])
            if len(received) % STOP_EVERY == 0:
                stops["inside"] += 1
                job.cancel_result_streaming()

        job = service.run(program, inputs={"n": INTERIMS, "delay": 0.001}, callback=callback)
        deadline = time.monotonic() + 240
        while len(received) < INTERIMS and time.monotonic() < deadline:
            if job.status().name in ("DONE", "ERROR"):  # the rest is stored: 15 s to get it
                deadline = min(deadline, time.monotonic() + 15)
            time.sleep(randomness.uniform(0.001, 0.03))
            if randomness.random() < 0.5:
                job.cancel_result_streaming()
                stops["outside"] += 1
            with contextlib.suppress(RuntimeInvalidStateError):  # still stopping: next round
                job.stream_results(callback)
                stops["restarts"] += 1
        job.cancel_result_streaming()
        job.wait_for_final_state(60)

    assert job.status().name == "DONE"
    assert received == list(range(INTERIMS)), (
        f"{len(received)} delivered, {len(set(received))} distinct, "
        f"missing {sorted(set(range(INTERIMS)) - set(received))[:10]}; {stops}"
    )
    assert stops["inside"] >= INTERIMS // STOP_EVERY - 1 and stops["restarts"] > 20, stops
