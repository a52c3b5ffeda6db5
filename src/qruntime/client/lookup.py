"""Find a program by id or by name, and a job by an id that may be mistyped.

``RuntimeService.program`` keeps the seed's id-only behaviour; these lookups are what the CLI
(or any script) uses to take a name where an id goes, and to suggest the nearest id.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import TYPE_CHECKING

from qruntime.client.exceptions import (
    RuntimeAmbiguousProgramError,
    RuntimeJobNotFound,
    RuntimeProgramNotFound,
)
from qruntime.client.job import RuntimeJob
from qruntime.client.program import RuntimeProgram
from qruntime.domain.suggest import nearest

if TYPE_CHECKING:
    from qruntime.client.service import RuntimeService

__all__ = ["find_job", "owned_programs_named", "resolve_program"]

#: Candidates an error lists at most.
MAX_CANDIDATES = 5
#: Recent jobs searched for an id near a mistyped one.
RECENT_JOBS = 200


def resolve_program(service: RuntimeService, ref: str) -> RuntimeProgram:
    """The program with id ``ref``, else the one named ``ref``: your own first, then public.

    Several of the first kind that has any: RuntimeAmbiguousProgramError lists their ids;
    none at all: RuntimeProgramNotFound lists the nearest ids and names.
    """
    try:
        return service.program(ref, refresh=True)
    except RuntimeProgramNotFound:
        pass
    visible = service.programs(refresh=True, limit=None)
    me = service.current_user()["name"]
    named = [p for p in visible if p.name == ref]
    tiers = (
        ("of your programs", [p for p in named if p.owner == me]),
        ("public programs", [p for p in named if p.owner != me and p.is_public]),
        ("programs of other users", [p for p in named if p.owner != me and not p.is_public]),
    )
    for what, found in tiers:
        if len(found) == 1:
            return found[0]
        if found:
            raise RuntimeAmbiguousProgramError(
                f"{len(found)} {what} are named {ref!r}; pass one of their ids:\n"
                + _lines(found, me),
                candidates=[p.program_id for p in found],
            )
    close = _nearest_programs(ref, visible)
    listing = (
        f"; the nearest:\n{_lines(close, me)}"
        if close
        else "; qruntime programs lists the ones you can see"
    )
    raise RuntimeProgramNotFound(f"no program has the id or name {ref!r}{listing}", status_code=404)


def owned_programs_named(
    service: RuntimeService, name: str, *, bare: bool = False
) -> list[RuntimeProgram]:
    """Your uploads called ``name`` (an upload of that name would make one more).

    A program whose id is its bare name (the catalogue, published by an admin) counts only
    when ``bare``: an ordinary upload never replaces a published program.
    """
    me = service.current_user()["name"]
    return [
        p
        for p in service.programs(refresh=True, limit=None)
        if p.name == name and p.owner == me and (p.program_id == name) == bare
    ]


def find_job(service: RuntimeService, job_id: str) -> RuntimeJob:
    """``service.job(job_id)``; when there is none, the error names your nearest job ids."""
    try:
        return service.job(job_id)
    except RuntimeJobNotFound as exc:
        recent = [job.job_id() for job in service.jobs(limit=RECENT_JOBS)]
        # Ids are random hex: unrelated ones share about half their characters, a typo nearly all.
        close = nearest(job_id, recent, n=2, cutoff=0.8)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise RuntimeJobNotFound(
            f"{exc.message}{hint} (qruntime jobs lists yours)", status_code=exc.status_code
        ) from None


def _nearest_programs(ref: str, programs: Iterable[RuntimeProgram]) -> list[RuntimeProgram]:
    """Programs whose id or name is close to ``ref`` (or starts with it), closest first."""
    scored = []
    for program in programs:
        score = max(_similarity(ref, program.program_id), _similarity(ref, program.name))
        if program.program_id.startswith(ref) or program.name.startswith(ref):
            score += 0.5
        if score >= 0.6:
            scored.append((score, program.program_id, program))
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [program for _, _, program in scored[:MAX_CANDIDATES]]


def _similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b).ratio()


def _lines(programs: Iterable[RuntimeProgram], me: str) -> str:
    rows = []
    for program in programs:
        whose = "yours" if program.owner == me else f"owner {program.owner}"
        visibility = "public" if program.is_public else "private"
        updated = _date(program.update_date)
        rows.append(
            f"  {program.program_id}  (name {program.name}, {whose}, {visibility}"
            + (f", updated {updated}" if updated else "")
            + ")"
        )
    return "\n".join(rows)


def _date(value: object) -> str:
    text = value.isoformat(timespec="seconds") if hasattr(value, "isoformat") else str(value or "")
    return text.replace("+00:00", "Z")
