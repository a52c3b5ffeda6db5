"""A server that dies in native code says where: every thread's Python stack in its log, so an
operator can tell which request or library it was (a crash seen once in Qiskit's allocator left
only a kernel line)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from server_harness import ServerProcess


def test_a_segfault_leaves_the_python_stacks_in_the_server_log(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", tmp_path / "accounts.json").start()
    try:
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGSEGV)
        assert server.process.wait(timeout=30) == -signal.SIGSEGV
        log = server.log()
        assert "Fatal Python error: Segmentation fault" in log, log[-2000:]
        assert "most recent call first" in log, log[-2000:]
    finally:
        server.stop()
