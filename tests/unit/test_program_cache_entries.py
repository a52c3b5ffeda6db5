"""The cache of what submit derives from a program: used only for the very program it was
derived from, so a changed program (on any replica, whatever its timestamps) is derived again."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from qruntime.service.program_cache import ProgramCache
from qruntime.storage import StoredProgram

NOW = datetime(2026, 12, 7, tzinfo=UTC)
PROGRAM = StoredProgram(
    id="p-1",
    name="p",
    owner_id=1,
    owner_name="alice",
    description="",
    max_execution_time=60,
    version=None,
    spec={"parameters": {"properties": {"n": {"type": "integer"}}}},
    is_public=False,
    source="def main(backend, user_messenger):\n    pass\n",
    created_at=NOW,
    updated_at=NOW,
)


def counting_cache(**options: int) -> tuple[ProgramCache[str], list[str]]:
    derived: list[str] = []

    def derive(program: StoredProgram) -> str:
        derived.append(program.id)
        return f"{program.id}:{program.max_execution_time}:{program.spec}"

    return ProgramCache(derive, **options), derived


def test_the_same_program_read_again_is_derived_once() -> None:
    cache, derived = counting_cache()
    again = dataclasses.replace(PROGRAM, spec=dict(PROGRAM.spec))  # an equal, fresh read
    assert cache.derived(PROGRAM) == cache.derived(again)
    assert derived == ["p-1"]


def test_any_changed_field_is_derived_again_even_with_the_same_timestamp() -> None:
    cache, derived = counting_cache()
    first = cache.derived(PROGRAM)
    changed = dataclasses.replace(PROGRAM, spec={"parameters": {"type": "object"}})
    assert cache.derived(changed) != first
    shorter = dataclasses.replace(changed, max_execution_time=30)
    assert cache.derived(shorter).startswith("p-1:30:")
    assert derived == ["p-1", "p-1", "p-1"]


def test_forgotten_and_least_recently_used_entries_are_derived_again() -> None:
    cache, derived = counting_cache(max_entries=2)
    cache.derived(PROGRAM)
    cache.forget("p-1")
    cache.derived(PROGRAM)
    others = [dataclasses.replace(PROGRAM, id=f"p-{n}") for n in (2, 3)]
    for program in others:
        cache.derived(program)  # p-1 is the least recently used: it goes
    assert len(cache) == 2
    cache.derived(others[1])
    cache.derived(PROGRAM)
    assert derived == ["p-1", "p-1", "p-2", "p-3", "p-1"]


def test_a_failed_derivation_is_not_remembered() -> None:
    calls: list[int] = []

    def derive(program: StoredProgram) -> int:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("stored metadata no longer valid")
        return len(calls)

    cache: ProgramCache[int] = ProgramCache(derive)
    with pytest.raises(ValueError, match="no longer valid"):
        cache.derived(PROGRAM)
    assert cache.derived(PROGRAM) == 2 and cache.derived(PROGRAM) == 2
