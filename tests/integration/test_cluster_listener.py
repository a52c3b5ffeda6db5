"""ClusterListener on a real PostgreSQL database: which signal wakes what, and a dropped
connection that is reconnected and then catches up on what it may have missed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session
from storage_support import fresh_database

from qruntime.service.cluster_listener import ClusterListener
from qruntime.service.stream_hub import StreamHub
from qruntime.storage import Database
from qruntime.storage.signals import Signals


class SchedulerStub:
    """The two calls a listener makes on the scheduler, recorded (a boundary, not the logic)."""

    def __init__(self) -> None:
        self.wakes = 0
        self.cancels: list[str] = []

    def wake(self) -> None:
        self.wakes += 1

    def cancel_here(self, job_id: str) -> None:
        self.cancels.append(job_id)


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[Database]:
    with fresh_database("postgresql", tmp_path) as database:
        yield database


async def eventually(check: Callable[[], object], what: str) -> None:
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def send(database: Database, sender: str, action: Callable[[Signals, Session], None]) -> None:
    with database.session() as session:
        action(Signals(sender), session)


async def test_signals_wake_the_hub_dispatcher_and_owner_and_own_ones_are_ignored(
    postgres: Database,
) -> None:
    hub, scheduler = StreamHub(), SchedulerStub()
    listener = ClusterListener(postgres.url, "r-me", hub, scheduler)
    await listener.start()
    try:
        interims, state = hub.watch("j-1"), hub.watch("j-2")
        interims_woke = asyncio.create_task(interims.wait(10))
        state_woke = asyncio.create_task(state.wait(10))

        def signal_everything(signals: Signals, session: Session) -> None:
            signals.interims(session, "j-1", 3)
            signals.changed(session, "j-2", "RUNNING")
            signals.queued(session, "j-3")
            signals.cancel(session, "j-4", "r-me")
            signals.cancel(session, "j-5", "r-someone-else")

        await asyncio.to_thread(send, postgres, "r-other", signal_everything)
        assert await interims_woke and await state_woke
        assert not interims.state_changed and state.state_changed
        await eventually(lambda: scheduler.cancels, "the cancel request")
        assert scheduler.cancels == ["j-4"] and scheduler.wakes == 1

        mine = hub.watch("j-6")
        await asyncio.to_thread(
            send, postgres, "r-me", lambda s, session: s.changed(session, "j-6", "DONE")
        )
        assert not await mine.wait(0.5)  # this replica woke its own readers already
    finally:
        await listener.stop()


async def test_a_dropped_connection_is_reconnected_and_everything_woken_once(
    postgres: Database,
) -> None:
    hub, scheduler = StreamHub(), SchedulerStub()
    reconnects: list[int] = []
    listener = ClusterListener(
        postgres.url,
        "r-me",
        hub,
        scheduler,
        on_reconnect=lambda: reconnects.append(1),
    )
    await listener.start()
    try:
        reader = hub.watch("j-waiting")
        woke = asyncio.create_task(reader.wait(30))

        def cut() -> int:
            with postgres.engine.connect() as connection:
                return len(
                    connection.execute(
                        text(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = current_database() "
                            "AND application_name = 'qruntime-listener r-me'"
                        )
                    ).all()
                )

        assert await asyncio.to_thread(cut) == 1
        assert await woke, "a reader that may have missed a signal was not woken"
        assert reader.state_changed  # it reads the database again
        await eventually(lambda: reconnects and scheduler.wakes, "the catch-up after reconnecting")
        assert listener.connected.is_set()

        after = hub.watch("j-after")
        woke_after = asyncio.create_task(after.wait(10))
        await asyncio.to_thread(
            send, postgres, "r-other", lambda s, session: s.interims(session, "j-after", 1)
        )
        assert await woke_after  # listening again
    finally:
        await listener.stop()


class BuggyScheduler(SchedulerStub):
    """Its cancel handler fails for one job, as a bug in what a signal wakes would."""

    def cancel_here(self, job_id: str) -> None:
        super().cancel_here(job_id)
        if job_id == "j-bug":
            raise RuntimeError("a bug in what the signal woke")


async def test_the_listener_survives_any_exception_and_listens_on(postgres: Database) -> None:
    hub, scheduler = StreamHub(), BuggyScheduler()
    listener = ClusterListener(postgres.url, "r-me", hub, scheduler)
    await listener.start()
    try:

        async def still_listening(job_id: str) -> None:
            reader = hub.watch(job_id)
            woke = asyncio.create_task(reader.wait(10))
            await asyncio.to_thread(
                send, postgres, "r-other", lambda s, session: s.interims(session, job_id, 1)
            )
            assert await woke, f"no longer listening ({job_id})"

        await asyncio.to_thread(
            send, postgres, "r-other", lambda s, session: s.cancel(session, "j-bug", "r-me")
        )
        await eventually(lambda: scheduler.cancels == ["j-bug"], "the failing cancel")
        await still_listening("j-after-bug")

        # The stream of signals itself fails with something the listener never expected.
        signals, failed = listener._listener.signals, []

        def failing_once():
            if not failed:
                failed.append(1)
                raise ValueError("an error nobody expected from the driver")
            return signals()

        listener._listener.signals = failing_once
        await listener._listener.aclose()  # the running stream ends; the next one fails
        await eventually(lambda: failed, "the unexpected failure")
        await eventually(lambda: listener.connected.is_set(), "the listener to reconnect")
        await still_listening("j-after-failure")
    finally:
        await listener.stop()
