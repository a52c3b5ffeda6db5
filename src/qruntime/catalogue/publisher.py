"""Apply a plan to one environment through a :class:`PublishTarget` (SDK or service layer)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Protocol

from qruntime.catalogue.entries import CatalogueProgram
from qruntime.catalogue.plan import Action, PlanStep, PublishedProgram, make_plan


class PublishTarget(Protocol):
    """One environment's programs, as the publisher needs them."""

    def published(self) -> list[PublishedProgram]:
        """Programs under a bare id (the catalogue's namespace: only admins may take one)."""
        ...

    def create(self, program: CatalogueProgram) -> None:
        """Upload under the bare name, public."""
        ...

    def update(self, program: CatalogueProgram) -> None:
        """Replace source and metadata; make it public."""
        ...

    def remove(self, program_id: str) -> None: ...


def plan_for(
    target: PublishTarget, selected: list[CatalogueProgram], *, prune: bool
) -> list[PlanStep]:
    return make_plan(selected, target.published(), prune=prune)


def apply_plan(
    target: PublishTarget,
    steps: list[PlanStep],
    on_step: Callable[[PlanStep], None] = lambda step: None,
) -> Counter[Action]:
    """Carry out every step in order; ``on_step`` hears of each one after it is done."""
    done: Counter[Action] = Counter()
    for step in steps:
        if step.action is Action.CREATE:
            assert step.program is not None
            target.create(step.program)
        elif step.action is Action.UPDATE:
            assert step.program is not None
            target.update(step.program)
        elif step.action is Action.REMOVE:
            target.remove(step.program_id)
        done[step.action] += 1
        on_step(step)
    return done


def summary(counts: Counter[Action]) -> str:
    """``2 created, 1 updated, 5 unchanged, 0 removed``."""
    words = {Action.CREATE: "created", Action.UPDATE: "updated", Action.REMOVE: "removed"}
    words[Action.UNCHANGED] = "unchanged"
    return ", ".join(f"{counts[action]} {words[action]}" for action in Action)


def select(catalogue: list[CatalogueProgram], selection: str | list[str]) -> list[CatalogueProgram]:
    """The catalogue programs an environment gets (``all`` or the named ones)."""
    if selection == "all":
        return list(catalogue)
    wanted = set(selection)
    return [program for program in catalogue if program.name in wanted]
