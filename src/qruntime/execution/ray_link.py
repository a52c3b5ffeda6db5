"""The replica's side of its Ray driver process: start it, call it, notice it died, start
another. While there is none, every call raises :class:`ExecutorUnavailable` at once."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import logging
import os
import pickle
import signal
import sys
from typing import Any

from qruntime.execution.executor import ExecutorUnavailable
from qruntime.execution.ray_driver import DriverSpec

log = logging.getLogger(__name__)

#: How long ``ray.init`` may take before the cluster counts as unreachable.
CONNECT_TIMEOUT = 60.0
#: How long Ray's core worker lets the driver wait for a lost head (GCS) before it ends the
#: driver; the replica then starts another, which connects once the head is back.
GCS_RECONNECT_SECONDS = "10"


class DriverLink:
    """One driver process at a time; :meth:`connect` starts one if none runs."""

    def __init__(self, spec: DriverSpec, python: str = sys.executable):
        self._spec = spec
        self._python = python
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.StreamReader | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._listener: asyncio.Task[None] | None = None
        self._connecting: asyncio.Lock | None = None
        #: Why there is no driver now; None while connected.
        self.down_reason: str | None = "not connected to Ray yet"
        #: What the driver said when it connected (its node, the cluster's id).
        self.hello: dict[str, Any] = {}

    @property
    def connected(self) -> bool:
        return self.down_reason is None

    async def connect(self) -> bool:
        """Start a driver unless one runs; False (and ``down_reason`` says why) if it fails."""
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self.connected:
                return True
            try:
                await asyncio.wait_for(self._start(), CONNECT_TIMEOUT)
            except TimeoutError:
                self._down(f"Ray at {self._spec.address} did not answer in {CONNECT_TIMEOUT:g} s")
            except Exception as exc:
                self._down(f"cannot connect to Ray at {self._spec.address}: {exc}")
            return self.connected

    async def call(self, op: str, timeout: float | None = None, **args: Any) -> Any:
        """One request to the driver; ``ExecutorUnavailable`` when it is not there or dies."""
        if not self.connected or self._process is None or self._process.stdin is None:
            raise ExecutorUnavailable(self.down_reason or "Ray is not connected")
        call_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = future
        line = json.dumps({"id": call_id, "op": op, "args": args}) + "\n"
        try:
            self._process.stdin.write(line.encode())
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            raise ExecutorUnavailable(f"Ray did not answer {op!r} within {timeout:g} s") from None
        except asyncio.CancelledError:
            self._abandon(call_id)
            raise
        finally:
            self._pending.pop(call_id, None)

    async def reset(self, reason: str) -> None:
        """Give up on this driver (it stopped answering): the next :meth:`connect` starts one."""
        self._down(reason)
        await self._stop_process()

    async def aclose(self) -> None:
        await self.reset("the server is shutting down")

    async def _start(self) -> None:
        await self._stop_process()
        read_fd, write_fd = os.pipe()
        try:
            self._process = await asyncio.create_subprocess_exec(
                self._python,
                "-m",
                "qruntime.execution.ray_driver",
                str(write_fd),
                str(os.getpid()),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                pass_fds=(write_fd,),
                env={
                    "RAY_gcs_rpc_server_reconnect_timeout_s": GCS_RECONNECT_SECONDS,
                    **os.environ,
                },
                start_new_session=True,  # our Ctrl-C is not the driver's: we stop it ourselves
            )
        finally:
            os.close(write_fd)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=64 * 2**20)
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", buffering=0)
        )
        assert self._process.stdin is not None
        self._process.stdin.write(base64.b64encode(pickle.dumps(self._spec)) + b"\n")
        first = await reader.readline()
        if not first:
            code = await self._process.wait()
            raise RuntimeError(f"the Ray driver exited with status {code}")
        answer = json.loads(first)
        if "error" in answer:
            raise RuntimeError(answer["error"])
        self.hello = answer["result"]
        self._reader = reader
        self.down_reason = None
        self._listener = loop.create_task(self._listen(reader, self._process))
        log.info("connected to Ray at %s (driver pid %d)", self._spec.address, self._process.pid)

    async def _listen(
        self, reader: asyncio.StreamReader, process: asyncio.subprocess.Process
    ) -> None:
        while line := await reader.readline():
            answer = json.loads(line)
            future = self._pending.get(answer["id"])
            if future is None or future.done():
                continue
            if "error" in answer:
                future.set_exception(RuntimeError(answer["error"]))
            elif answer.get("cancelled"):
                future.set_exception(ExecutorUnavailable("the Ray driver dropped the call"))
            else:
                future.set_result(answer["result"])
        code = await process.wait()
        if process is self._process:
            self._down(
                f"the Ray driver exited (status {code}): Ray at {self._spec.address} is "
                "unreachable or restarted"
            )

    def _down(self, reason: str) -> None:
        if self.down_reason is None:
            log.warning("Ray executor down: %s", reason)
        self.down_reason = reason
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ExecutorUnavailable(reason))
        self._pending.clear()

    def _abandon(self, call_id: int) -> None:
        process = self._process
        if process is not None and process.stdin is not None and self.connected:
            line = json.dumps({"id": 0, "op": "abandon", "args": {"call": call_id}}) + "\n"
            with contextlib.suppress(Exception):
                process.stdin.write(line.encode())

    async def _stop_process(self) -> None:
        process, self._process = self._process, None
        if self._listener is not None:
            self._listener.cancel()
            self._listener = None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
