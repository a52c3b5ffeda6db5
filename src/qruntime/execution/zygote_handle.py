"""The supervisor's side of the zygote: start it, order forks, learn how each worker ended."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import signal
import socket
from typing import Any

from qruntime.execution.zygote_link import control_pair, receive_message, send_message

log = logging.getLogger(__name__)


class ZygoteUnavailable(RuntimeError):
    """The zygote could not be started, or it died: start workers the plain way instead."""


class ForkedProcess:
    """A worker the zygote forked: what the executor needs of a process, like asyncio's."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None
        self._exited = asyncio.Event()

    def exited(self, returncode: int) -> None:
        if self.returncode is None:
            self.returncode = returncode
            self._exited.set()

    async def wait(self) -> int:
        await self._exited.wait()
        assert self.returncode is not None
        return self.returncode


class ZygoteHandle:
    """One running zygote process and its control channel, on the loop that started it."""

    def __init__(self, process: asyncio.subprocess.Process, sock: socket.socket):
        self.process = process
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._ready: asyncio.Future[dict[str, Any]] = self._loop.create_future()
        self._orders: dict[int, asyncio.Future[ForkedProcess]] = {}
        self._children: dict[int, ForkedProcess] = {}
        self._ids = itertools.count(1)
        self.alive = True
        sock.setblocking(False)
        self._loop.add_reader(sock.fileno(), self._on_readable)

    @classmethod
    async def start(
        cls,
        python: str,
        env: dict[str, str] | None,
        preload: tuple[str, ...],
        gpu: bool,
        timeout: float,
    ) -> ZygoteHandle:
        ours, theirs = control_pair()
        # QRUNTIME_ZYGOTE_HUGE_PAGES=0: leave the image in 4 KiB pages (an A/B switch, perf docs)
        huge_pages = os.environ.get("QRUNTIME_ZYGOTE_HUGE_PAGES", "1") != "0"
        config = json.dumps({"preload": list(preload), "gpu": gpu, "huge_pages": huge_pages})
        try:
            process = await asyncio.create_subprocess_exec(
                python,
                "-m",
                "qruntime.execution.zygote",
                str(theirs.fileno()),
                str(os.getpid()),
                config,
                stdin=asyncio.subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
                env=env,
            )
        except OSError as exc:
            ours.close()
            raise ZygoteUnavailable(f"the zygote could not be started: {exc}") from exc
        finally:
            theirs.close()
        handle = cls(process, ours)
        try:
            ready = await asyncio.wait_for(asyncio.shield(handle._ready), timeout)
        except (TimeoutError, ZygoteUnavailable) as exc:
            await handle.aclose()
            raise ZygoteUnavailable(f"the zygote did not become ready: {exc!r}") from exc
        except BaseException:  # cancelled while it imported
            await handle.aclose()
            raise
        if ready.get("missing"):
            log.warning("the zygote could not pre-import %s", ", ".join(ready["missing"]))
        log.info("zygote %s ready after %.2f s", ready["pid"], ready["seconds"])
        return handle

    async def fork(self, order: dict[str, Any], fds: list[int]) -> ForkedProcess:
        """Order one worker; ``fds`` (its pipe ends) go along, and the caller still closes ours."""
        if not self.alive:
            raise ZygoteUnavailable("the zygote is gone")
        order_id = next(self._ids)
        answer: asyncio.Future[ForkedProcess] = self._loop.create_future()
        self._orders[order_id] = answer
        try:
            send_message(self._sock, {**order, "op": "fork", "id": order_id}, fds)
        except OSError as exc:
            self._orders.pop(order_id, None)
            raise ZygoteUnavailable(f"the zygote took no order: {exc}") from exc
        return await answer

    async def aclose(self) -> None:
        """Stop the zygote; workers it forked die with it (their parent-death signal)."""
        self._gone("the zygote was stopped")
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        await self.process.wait()

    def _on_readable(self) -> None:
        while self.alive:
            try:
                message, _ = receive_message(self._sock)
            except BlockingIOError:
                return
            except (OSError, ValueError) as exc:
                log.error("the zygote's channel broke: %s", exc)
                message = None
            if message is None:
                self._gone("the zygote exited")
                return
            self._handle(message)

    def _handle(self, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "ready" and not self._ready.done():
            self._ready.set_result(message)
        elif op == "forked":
            child = ForkedProcess(message["pid"])
            self._children[child.pid] = child
            answer = self._orders.pop(message["id"], None)
            if answer is not None and not answer.done():
                answer.set_result(child)
        elif op == "fork_failed":
            answer = self._orders.pop(message["id"], None)
            if answer is not None and not answer.done():
                answer.set_exception(ZygoteUnavailable(f"fork failed: {message['error']}"))
        elif op == "exited":
            child = self._children.pop(message["pid"], None)
            if child is not None:
                child.exited(message["returncode"])

    def _gone(self, why: str) -> None:
        if not self.alive:
            return
        self.alive = False
        with contextlib.suppress(ValueError, RuntimeError):
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        if not self._ready.done():
            self._ready.set_exception(ZygoteUnavailable(why))
            # Marked as seen: when start() gave up waiting (shutdown), nobody will, and asyncio
            # would log "Future exception was never retrieved" at exit.
            self._ready.exception()
        for answer in self._orders.values():
            if not answer.done():
                answer.set_exception(ZygoteUnavailable(why))
        self._orders.clear()
        # Its workers got SIGKILL from their parent-death signal; nobody can tell us more.
        for child in self._children.values():
            child.exited(-signal.SIGKILL)
        self._children.clear()
