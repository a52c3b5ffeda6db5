"""The SSE text of stream events: every reader sees one event per item, its JSON unchanged."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from qruntime.api.routers.stream import _event
from qruntime.storage.records import StoredInterim


def read_events(text: str) -> list[str]:
    """The events' data as httpx (splitting lines like ``str.splitlines()``) and SSE rejoin it."""
    events, data = [], []
    for line in httpx.Response(200, text=text).iter_lines():
        if line.startswith("data: "):
            data.append(line.removeprefix("data: "))
        elif not line and data:
            events.append("\n".join(data))
            data = []
    return events


@pytest.mark.parametrize("text", ["a\u2028b", "a\u2029b", "a\x85b", "line\nbreak"])
def test_an_interim_with_a_line_separator_stays_one_event(text: str) -> None:
    stored = json.dumps({"text": text}, ensure_ascii=False)  # raw, as a worker may send it
    item = StoredInterim(job_id="j-1", seq=3, data=stored, created_at=datetime.now(UTC))
    events = read_events(_event(item) + _event(item))
    assert [json.loads(event) for event in events] == [{"seq": 3, "data": {"text": text}}] * 2


def test_json_text_spread_over_lines_keeps_its_line_breaks() -> None:
    stored = '{\n  "x": 1,\r\n  "y": [2]\r}'
    item = StoredInterim(job_id="j-1", seq=1, data=stored, created_at=datetime.now(UTC))
    assert _event(item).count("data: ") == 4
    assert [json.loads(e) for e in read_events(_event(item))] == [
        {"seq": 1, "data": json.loads(stored)}
    ]
