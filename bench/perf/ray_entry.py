"""Ray job entrypoint: run a runtime program as our plain worker does; stamp its first publish.

python bench/perf/ray_entry.py PROGRAM_FILE OUT_FILE
"""

from __future__ import annotations

import os
import sys
import time
import types
from typing import Any

# The same imports (and backend) as our own plain worker process: that makes it the same program.
import qiskit  # noqa: F401
import qiskit_aer


class FirstPublishStamp:
    """A user messenger that only records when the first interim result is published."""

    def __init__(self, out_file: str) -> None:
        self._out_file = out_file
        self._stamped = False

    def publish(self, value: Any, final: bool = False) -> None:
        """Write ``time.time()`` to the out file on the first call only, atomically."""
        now = time.time()
        if self._stamped:
            return
        self._stamped = True
        tmp = f"{self._out_file}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(repr(now))
        os.replace(tmp, self._out_file)


def load_program(path: str) -> types.ModuleType:
    """Compile with the real file name, so tracebacks point into the program."""
    with open(path, encoding="utf-8") as f:
        source = f.read()
    module = types.ModuleType("runtime_program")
    module.__file__ = path
    exec(compile(source, path, "exec"), module.__dict__)
    return module


def run(program_file: str, out_file: str) -> Any:
    """Build the backend, load the program, and call its ``main``."""
    backend = qiskit_aer.AerSimulator()
    module = load_program(program_file)
    return module.main(backend, FirstPublishStamp(out_file))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: ray_entry.py PROGRAM_FILE OUT_FILE")
    print(run(sys.argv[1], sys.argv[2]))
