"""Round-robin across users: a user's backlog never keeps another user's first job waiting."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from qruntime.service.fair_share import FairShare


@dataclass(frozen=True)
class Queued:
    id: str
    owner_id: int


def queue(*spec: tuple[str, int]) -> list[Queued]:
    return [Queued(job_id, owner) for job_id, owner in spec]


def test_alternates_between_users_oldest_job_first():
    jobs = queue(("a1", 1), ("a2", 1), ("a3", 1), ("b1", 2), ("b2", 2), ("c1", 3))
    picked = FairShare().pick(jobs, Counter(), slots=6)
    assert [j.id for j in picked] == ["a1", "b1", "c1", "a2", "b2", "a3"]


def test_user_with_fewest_running_jobs_goes_first():
    jobs = queue(("a1", 1), ("b1", 2))
    picked = FairShare().pick(jobs, Counter({1: 2}), slots=1)
    assert [j.id for j in picked] == ["b1"]


def test_remembers_who_was_served_across_rounds():
    share = FairShare()
    assert [j.id for j in share.pick(queue(("a1", 1), ("b1", 2)), Counter(), slots=1)] == ["a1"]
    # Next round, with nothing running: user 2 has waited longer than user 1.
    assert [j.id for j in share.pick(queue(("a2", 1), ("b1", 2)), Counter(), slots=1)] == ["b1"]


def test_never_picks_more_than_the_free_slots_or_the_queue():
    jobs = queue(("a1", 1), ("b1", 2))
    assert len(FairShare().pick(jobs, Counter(), slots=1)) == 1
    assert len(FairShare().pick(jobs, Counter(), slots=5)) == 2
    assert FairShare().pick(jobs, Counter(), slots=0) == []


def test_a_user_at_the_running_cap_waits_and_the_others_go_on():
    jobs = queue(("a1", 1), ("a2", 1), ("a3", 1), ("b1", 2), ("c1", 3))
    picked = FairShare().pick(jobs, Counter({1: 1, 3: 2}), slots=5, max_running_per_owner=2)
    assert [j.id for j in picked] == ["b1", "a1"]
