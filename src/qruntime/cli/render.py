"""How job events look on a terminal, and as one JSON object per line."""

from __future__ import annotations

import json
import sys
from typing import Any

from qruntime.domain.events import (
    CancelledEvent,
    ErrorEvent,
    InterimEvent,
    JobEvent,
    LogEvent,
    ResultEvent,
)


def event_json_line(event: JobEvent) -> str:
    """One line of ``--json`` output; data stays as RuntimeEncoder wrote it."""
    payload: dict[str, Any]
    if isinstance(event, InterimEvent):
        payload = {"type": "interim", "seq": event.seq, "data": json.loads(event.data)}
    elif isinstance(event, LogEvent):
        payload = {"type": "log", "stream": event.stream, "text": event.text}
    elif isinstance(event, ResultEvent):
        payload = {"type": "result", "data": json.loads(event.data)}
    else:
        payload = {"type": "error", "reason": str(event.reason), "message": event.message}
    return json.dumps(payload)


def print_event(event: JobEvent) -> None:
    """As ``qruntime run`` prints a job: interims as ``[seq] <json>`` and the result as JSON on
    stdout, log lines prefixed with their stream, an error on stderr."""
    if isinstance(event, InterimEvent):
        _out(f"[{event.seq}] {_compact(event.data)}")
    elif isinstance(event, LogEvent):
        _out(f"[{event.stream}] {event.text}")
    elif isinstance(event, ResultEvent):
        _out(_compact(event.data))
    elif isinstance(event, ErrorEvent | CancelledEvent):
        what = "failed" if isinstance(event, ErrorEvent) else "was cancelled"
        print(f"error: the job {what} ({event.reason}):\n{event.message}", file=sys.stderr)


def _compact(data: str) -> str:
    """RuntimeEncoder JSON on one line, spaced as ``qruntime run`` prints it."""
    return json.dumps(json.loads(data))


def _out(line: str) -> None:
    print(line, flush=True)
