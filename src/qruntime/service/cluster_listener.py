"""Wakes this replica for what other replicas and agents commit (PostgreSQL ``LISTEN``).

Signals wake the stream hub (interim results, status changes and ends of jobs run elsewhere),
the dispatcher (newly queued jobs) and the scheduler (cancel requests for jobs owned here).
The database stays the record: a woken reader reads it. If the connection drops, the listener
reconnects and, since signals may have been missed meanwhile, wakes every reader, the
dispatcher and the heartbeat (which re-reads cancel requests) once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import psycopg

from qruntime.domain.job import JobStatus
from qruntime.service.scheduler import Scheduler
from qruntime.service.stream_hub import StreamHub
from qruntime.storage.signals import DELETED, Signal, SignalKind, SignalListener

log = logging.getLogger("qruntime.listener")

#: Wait before reconnecting, doubled after each failure up to the maximum (seconds).
RECONNECT_FIRST_SECONDS = 0.2
RECONNECT_MAX_SECONDS = 5.0

_ENDED = {status.value for status in JobStatus if status.is_terminal()} | {DELETED}


class ClusterListener:
    def __init__(
        self,
        url: str,
        replica_id: str,
        hub: StreamHub,
        scheduler: Scheduler,
        *,
        on_reconnect: Callable[[], None] = lambda: None,
    ):
        """``on_reconnect`` runs after every reconnection (not the first connection)."""
        self._listener = SignalListener(url, name=f"qruntime-listener {replica_id}")
        self._replica_id = replica_id
        self._hub = hub
        self._scheduler = scheduler
        self._on_reconnect = on_reconnect
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    async def start(self) -> None:
        """Listen before anything is dispatched, so no signal from then on is missed."""
        await self._listener.connect()
        self.connected.set()
        self._task = asyncio.create_task(self._listen_forever(), name="qruntime-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._listener.aclose()

    async def _listen_forever(self) -> None:
        """Never ends but by cancellation: whatever fails (the link, the driver, a bug in
        what a signal wakes), the listener logs it and listens again."""
        delay = RECONNECT_FIRST_SECONDS
        while True:
            try:
                if not self.connected.is_set():
                    await self._listener.connect()
                    self.connected.set()
                    log.info("listening for other replicas' signals again")
                    self._caught_up()
                delay = RECONNECT_FIRST_SECONDS
                async for signal in self._listener.signals():
                    self._safely(self._dispatch, signal)
                raise ConnectionError("the signal stream ended")
            except Exception as exc:
                if self.connected.is_set():
                    if isinstance(exc, psycopg.Error | OSError):
                        log.warning("lost the signal connection (%s); reconnecting", exc)
                    else:
                        log.exception("the signal listener failed; reconnecting")
                self.connected.clear()
                with contextlib.suppress(Exception):
                    await self._listener.aclose()
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)

    def _caught_up(self) -> None:
        """Whatever was signalled while disconnected: every reader and the dispatcher look."""
        self._safely(lambda _: self._hub.wake_all(), None)
        self._safely(lambda _: self._scheduler.wake(), None)
        self._safely(lambda _: self._on_reconnect(), None)

    @staticmethod
    def _safely(action: Callable[[Any], None], argument: Any) -> None:
        """One wake-up that fails is logged; the others, and the connection, go on."""
        try:
            action(argument)
        except Exception:
            log.exception("a signal could not be handled (%r)", argument)

    def _dispatch(self, signal: Signal) -> None:
        if signal.sender == self._replica_id:
            return  # this replica woke its own readers already
        kind, job_id = signal.kind, signal.job_id
        if kind is SignalKind.INTERIMS:
            self._hub.wake(job_id)
        elif kind is SignalKind.CHANGED:
            self._hub.notify(job_id)
            if signal.detail in _ENDED:
                self._hub.forget(job_id)
        elif kind is SignalKind.QUEUED:
            self._scheduler.wake()
        elif kind is SignalKind.CANCEL and signal.detail == self._replica_id:
            self._scheduler.cancel_here(job_id)
