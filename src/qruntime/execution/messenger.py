"""The ``user_messenger`` a program receives: interim results go to the supervisor's pipe."""

from __future__ import annotations

import json
import threading
from typing import Any

from qruntime.domain.text import may_hold_surrogates, published_json_problem
from qruntime.execution.limits import JobLimits, interim_too_large, too_many_interims, unstorable
from qruntime.execution.protocol import write_frame
from qruntime.serialization import RuntimeEncoder


class UserMessenger:
    """Sends numbered interim results; ``final=True`` is the result when ``main`` returns None."""

    def __init__(self, event_fd: int, limits: JobLimits | None = None):
        self._event_fd = event_fd
        self._limits = limits or JobLimits()
        self._seq = 0
        self._lock = threading.Lock()  # programs may publish from several threads
        self._closed = False
        self.final_data: str | None = None

    def publish(
        self, message: Any, encoder: type[json.JSONEncoder] = RuntimeEncoder, final: bool = False
    ) -> None:
        data = json.dumps(message, cls=encoder)
        if len(data) > self._limits.max_interim_bytes and not final:
            raise ValueError(interim_too_large(len(data), self._limits.max_interim_bytes))
        if may_hold_surrogates(data) and (problem := published_json_problem(data)):
            raise ValueError(unstorable("the result" if final else "an interim result", problem))
        if final:
            self.final_data = data
            return
        with self._lock:
            if self._closed:
                raise RuntimeError("the job has finished: publish() after main() returned is lost")
            if self._seq >= self._limits.max_interim_results:
                raise RuntimeError(too_many_interims(self._limits.max_interim_results))
            self._seq += 1
            write_frame(self._event_fd, {"type": "interim", "seq": self._seq, "data": data})

    def finish(self, message: dict[str, Any]) -> None:
        """Send the job's last frame; later publishes from leftover threads are refused."""
        with self._lock:
            self._closed = True
            write_frame(self._event_fd, message)
