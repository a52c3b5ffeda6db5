"""The settings a Ray agent runs jobs with, as named values and a fingerprint.

An agent keeps the settings of the replica that started it; a replica that connects later with
other settings would have its jobs run under limits it was not configured with. Comparing
fingerprints tells, and the named values say which settings differ. Paths are left out: they
name places on the replica's own machine (its data dir, its Python), not how jobs run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from qruntime.execution.local import LocalExecutorConfig

#: Settings that are places on the replica's machine, not limits of the agents' jobs.
NOT_COMPARED = frozenset({"python", "workdir_root", "sandbox.hidden_paths"})


def agent_settings(config: LocalExecutorConfig) -> dict[str, Any]:
    """Every compared setting by its dotted name (``sandbox.max_processes``), JSON values."""
    flat: dict[str, Any] = {}
    _flatten("", config, flat)
    return {name: value for name, value in flat.items() if name not in NOT_COMPARED}


def fingerprint(settings: dict[str, Any]) -> str:
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


#: What a setting one side does not have shows as (``sandbox.enabled`` without a sandbox).
UNSET = "(unset)"


def differences(agents: dict[str, Any], mine: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each setting whose value differs: ``{"agents": ..., "this_replica": ...}``."""
    return {
        name: {"agents": agents.get(name, UNSET), "this_replica": mine.get(name, UNSET)}
        for name in sorted(set(agents) | set(mine))
        if agents.get(name, UNSET) != mine.get(name, UNSET)
    }


def describe(differing: dict[str, dict[str, Any]]) -> str:
    return "; ".join(
        f"{name}: agents {value['agents']!r}, this replica {value['this_replica']!r}"
        for name, value in differing.items()
    )


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for item in dataclasses.fields(value):
            _flatten(f"{prefix}{item.name}.", getattr(value, item.name), out)
        return
    out[prefix.rstrip(".")] = _plain(value)


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value
