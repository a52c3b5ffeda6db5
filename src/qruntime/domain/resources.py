"""What a job asks of the machine it runs on: CPUs, memory and GPUs (Ray places it by them)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

#: The Ray resource name of each field, and how people call it in messages.
_RAY_NAMES = {
    "cpus": ("CPU", "CPUs"),
    "memory_bytes": ("memory", "bytes of memory"),
    "gpus": ("GPU", "GPUs"),
}
#: The largest value of each field a request may name (no machine has more).
_CEILINGS = {"cpus": 4096.0, "memory_bytes": float(2**50), "gpus": 1024.0}


@dataclass(frozen=True)
class JobResources:
    """A job's reservation; the defaults are one CPU, no memory reservation, no GPU."""

    cpus: float = 1.0
    memory_bytes: int = 0
    gpus: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, payload: Mapping[str, Any] | None) -> JobResources:
        """Check and build; ``ValueError`` names the field that is wrong."""
        if payload is None:
            return cls()
        if not isinstance(payload, Mapping):
            raise ValueError('resources: must be an object like {"cpus": 2, "gpus": 1}')
        unknown = sorted(set(payload) - set(_RAY_NAMES))
        if unknown:
            names = ", ".join(_RAY_NAMES)
            raise ValueError(f"resources.{unknown[0]}: unknown resource (known: {names})")
        values = {}
        for name, value in payload.items():
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
                or value > _CEILINGS[name]
            ):
                raise ValueError(
                    f"resources.{name}: must be a number from 0 to {_CEILINGS[name]:g}, "
                    f"got {value!r}"
                )
            values[name] = int(value) if name == "memory_bytes" else float(value)
        if values.get("cpus", 1.0) == 0 and not values.get("gpus"):
            raise ValueError("resources.cpus: a job needs some CPU (or a GPU)")
        return cls(**values)

    @classmethod
    def requested(
        cls, asked: Mapping[str, Any] | None, defaults: Mapping[str, Any] | None
    ) -> JobResources:
        """A job's reservation: each resource it names, the program's default for the others
        (a job may ask for less than the default too); ``ValueError`` as :meth:`from_json`."""
        if asked is not None and not isinstance(asked, Mapping):
            return cls.from_json(asked)  # raises, saying what it must be
        return cls.from_json({**(defaults or {}), **(asked or {})})

    def ray_bundle(self) -> dict[str, float]:
        """The request as a Ray resource bundle (zero amounts left out, as Ray wants)."""
        return {
            _RAY_NAMES[name][0]: float(getattr(self, name))
            for name in _RAY_NAMES
            if getattr(self, name)
        }

    def unsatisfiable(self, node_totals: Iterable[Mapping[str, float]]) -> str | None:
        """Why no node (by its total resources) could ever hold this job; None if one could."""
        totals = list(node_totals)
        bundle = self.ray_bundle()
        if any(all(node.get(k, 0.0) >= v for k, v in bundle.items()) for node in totals):
            return None
        if not totals:
            return "the Ray cluster has no node"
        for name, (ray_name, words) in _RAY_NAMES.items():
            wanted = bundle.get(ray_name)
            if wanted is None:
                continue
            most = max(node.get(ray_name, 0.0) for node in totals)
            if most < wanted:
                return (
                    f"the job asks for {wanted:g} {words} (resources.{name}); the largest Ray "
                    f"node has {most:g}"
                )
        asked = ", ".join(f"{v:g} {_words(k)}" for k, v in bundle.items())
        return f"no single Ray node has {asked} together"


def _words(ray_name: str) -> str:
    return next(words for name, words in _RAY_NAMES.values() if name == ray_name)
