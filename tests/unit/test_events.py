"""Job events keep their shape across the JSON wire form."""

import pytest

from qruntime.domain.events import (
    CancelledEvent,
    ErrorEvent,
    InterimEvent,
    LogEvent,
    ResultEvent,
    event_from_json,
    event_to_json,
)
from qruntime.domain.job import JobReason, JobStatus


@pytest.mark.parametrize(
    "event",
    [
        InterimEvent(3, '{"iteration": 2}'),
        LogEvent("hello", "stderr"),
        ResultEvent('"All done!"'),
        ErrorEvent("Traceback ...", JobReason.PROCESS_CRASHED),
        CancelledEvent(JobReason.RAN_TOO_LONG, "ran longer than 1 s"),
    ],
)
def test_event_round_trips_through_json(event):
    assert event_from_json(event_to_json(event)) == event


def test_unknown_event_type_is_refused():
    with pytest.raises(ValueError, match="unknown event type 'bogus'"):
        event_from_json({"type": "bogus"})


def test_terminal_events_carry_their_status():
    assert ResultEvent("1").status is JobStatus.DONE
    assert ErrorEvent("x").status is JobStatus.ERROR
    assert CancelledEvent(JobReason.CANCELLED_BY_USER).status is JobStatus.CANCELLED
    assert all(s.is_terminal() for s in (JobStatus.DONE, JobStatus.ERROR, JobStatus.CANCELLED))
    assert not JobStatus.RUNNING.is_terminal()
