"""How job events look on a terminal, and as one JSON object per line."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.pretty import pretty_repr
from rich.text import Text

from qruntime.domain.events import (
    CancelledEvent,
    ErrorEvent,
    InterimEvent,
    JobEvent,
    LogEvent,
    ResultEvent,
)
from qruntime.serialization import decode


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


def print_event(event: JobEvent, out: Console, err: Console) -> None:
    """Human-readable rendering: interims and the result decoded, logs prefixed."""
    if isinstance(event, InterimEvent):
        out.print(Text(f"interim #{event.seq}: ", style="cyan") + _pretty(event.data))
    elif isinstance(event, LogEvent):
        out.print(Text(f"[{event.stream}] ", style="dim") + Text(event.text), highlight=False)
    elif isinstance(event, ResultEvent):
        out.print(Text("result: ", style="bold green") + _pretty(event.data))
    elif isinstance(event, ErrorEvent | CancelledEvent):
        label = "error" if isinstance(event, ErrorEvent) else "cancelled"
        err.print(Text(f"{label} ({event.reason}): ", style="bold red") + Text(event.message))


def _pretty(data: str) -> Text:
    return Text(pretty_repr(decode(data), max_width=100))
