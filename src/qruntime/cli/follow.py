"""Follow a job live: each interim result on stdout as it arrives, its status on stderr."""

from __future__ import annotations

import json

from qruntime.cli.status_line import StatusLine
from qruntime.client import RuntimeService
from qruntime.client.stream import InterimMessage


def follow_job(service: RuntimeService, job_id: str, *, as_json: bool) -> None:
    """Return once the job reached its final state; interims print as ``[seq] <json>``."""
    last_status: tuple[str, str | None] | None = None
    with StatusLine(job_id) as status_line:
        for message in service.job_events(job_id):
            if isinstance(message, InterimMessage):
                # ``data`` is already RuntimeEncoder JSON: print it as sent, not re-encoded.
                if as_json:
                    line = {"type": "interim", "seq": message.seq, "data": message.data}
                    _print(json.dumps(line))
                else:
                    _print(f"[{message.seq}] {json.dumps(message.data)}")
                status_line.interim_arrived()
                continue
            status_line.show(message.status, message.reason)
            if as_json and (message.status, message.reason) != last_status:
                last_status = (message.status, message.reason)
                line = {"type": "status", "status": message.status, "reason": message.reason}
                _print(json.dumps(line))


def _print(line: str) -> None:
    """Through ``sys.stdout`` as it is now: on a terminal, the status line's proxy for it.

    (``click.echo`` would bypass the proxy and print over the status line.)
    """
    print(line, flush=True)
