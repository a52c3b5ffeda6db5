"""How many bytes one user keeps stored, for the per-user storage budget.

Counted as stored (characters of the stored text): program sources, descriptions and specs;
each job's inputs, source, result, error message and interim results (``jobs.stored_bytes``,
kept up to date by the writes themselves) and its log (``jobs.log_bytes``).
"""

from __future__ import annotations

from sqlalchemy import String, cast, func, select
from sqlalchemy.orm import Session

from qruntime.storage.models import JOBS, PROGRAMS


def stored_bytes_of(session: Session, owner_id: int) -> int:
    jobs = session.execute(
        select(func.coalesce(func.sum(JOBS.c.stored_bytes + JOBS.c.log_bytes), 0)).where(
            JOBS.c.owner_id == owner_id
        )
    ).scalar_one()
    program_size = (
        func.length(PROGRAMS.c.source)
        + func.length(PROGRAMS.c.description)
        + func.length(cast(PROGRAMS.c.spec, String))
    )
    programs = session.execute(
        select(func.coalesce(func.sum(program_size), 0)).where(PROGRAMS.c.owner_id == owner_id)
    ).scalar_one()
    return int(jobs) + int(programs)
