"""How a program looks in ``--json`` output: its id, owner and dates, then its metadata."""

from __future__ import annotations

from typing import Any

from qruntime.client import RuntimeProgram
from qruntime.client.wire import format_date


def program_json(program: RuntimeProgram) -> dict[str, Any]:
    """The upload format (name, description, spec...) plus what the server added."""
    return {
        "id": program.program_id,
        "owner": program.owner,
        "creation_date": format_date(program.creation_date),
        "update_date": format_date(program.update_date),
        **program.metadata,
    }
