"""What publishing would change on one environment: create, update, unchanged or remove."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from qruntime.catalogue.entries import CatalogueProgram


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    REMOVE = "remove"


@dataclass(frozen=True)
class PublishedProgram:
    """A catalogue program as the environment has it (bare id; ``content_hash`` None if unseen)."""

    program_id: str
    content_hash: str | None
    is_public: bool


@dataclass(frozen=True)
class PlanStep:
    action: Action
    program_id: str
    reason: str
    program: CatalogueProgram | None = None

    def __str__(self) -> str:
        return f"{self.action.value:<9}  {self.program_id}  ({self.reason})"


def make_plan(
    selected: list[CatalogueProgram], published: list[PublishedProgram], *, prune: bool
) -> list[PlanStep]:
    """Steps ordered by program id; removals only with ``prune``."""
    current = {p.program_id: p for p in published}
    steps = [_step(program, current.get(program.name)) for program in selected]
    if prune:
        wanted = {program.name for program in selected}
        steps += [
            PlanStep(Action.REMOVE, program_id, "no longer selected for this environment")
            for program_id in current.keys() - wanted
        ]
    return sorted(steps, key=lambda step: step.program_id)


def _step(program: CatalogueProgram, existing: PublishedProgram | None) -> PlanStep:
    if existing is None:
        return PlanStep(Action.CREATE, program.name, "new", program)
    if existing.content_hash != program.content_hash:
        return PlanStep(Action.UPDATE, program.name, "source or metadata changed", program)
    if not existing.is_public:
        return PlanStep(Action.UPDATE, program.name, "was private", program)
    return PlanStep(Action.UNCHANGED, program.name, "same source and metadata", program)
