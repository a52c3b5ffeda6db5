"""A worker process's pipes as the supervisor holds them: made, read, written once, closed;
and the kill that ends the worker with whatever it started in its process group."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

from qruntime.execution.warm_pool import WorkerProcess


async def open_reader(fd: int) -> tuple[asyncio.StreamReader, asyncio.BaseTransport]:
    """The reading end of a worker pipe on this loop; lines up to 1 MiB fit its buffer."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**20)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0)
    )
    return reader, transport


def send_and_close(fd: int, payload: bytes) -> None:
    """Hand the request to the worker; a worker that died first is reported elsewhere."""
    try:
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view) :]
    except OSError:
        pass
    finally:
        os.close(fd)


def kill_group(process: WorkerProcess) -> None:
    """SIGKILL the worker's process group, which its setsid() made its own."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.returncode is None:  # a forked worker killed before its setsid() has no group
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(process.pid, signal.SIGKILL)


class WorkerPipes:
    """A worker's four pipes: job request in, events out, stdout and stderr out."""

    def __init__(self) -> None:
        self.job_r, self.job_w = os.pipe()
        self.event_r, self.event_w = os.pipe()
        self.out_r, self.out_w = os.pipe()
        self.err_r, self.err_w = os.pipe()

    @property
    def child_ends(self) -> tuple[int, int, int, int]:
        return (self.job_r, self.event_w, self.out_w, self.err_w)

    def close_child_ends(self) -> None:
        for fd in self.child_ends:
            os.close(fd)

    def close_all(self) -> None:
        for fd in (*self.child_ends, self.job_w, self.event_r, self.out_r, self.err_r):
            with contextlib.suppress(OSError):
                os.close(fd)
