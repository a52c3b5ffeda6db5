"""Nearest-name suggestions for mistyped names (backends, inputs, programs, jobs)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def nearest(word: str, candidates: Iterable[str], *, n: int = 3, cutoff: float = 0.6) -> list[str]:
    """The candidates closest to ``word``, best first (``difflib``'s ratio, at least ``cutoff``)."""
    return difflib.get_close_matches(word, list(candidates), n=n, cutoff=cutoff)


def did_you_mean(word: str, candidates: Iterable[str], *, cutoff: float = 0.6) -> str:
    """``"; did you mean 'x'?"`` for the closest candidate, or an empty string."""
    found = nearest(word, candidates, n=1, cutoff=cutoff)
    return f"; did you mean {found[0]!r}?" if found else ""
