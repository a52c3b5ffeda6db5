"""The raw calibration snapshot of a ``fake_<device>`` backend: the configuration and properties
JSON documents qiskit-ibm-runtime ships, as IBM's service once served them.

Compatibility layers hand these to clients that parse the 2021 wire shapes; they are read from
the package's files, never built from the Qiskit objects (which drop fields the old clients
need).
"""

from __future__ import annotations

import functools
import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_FAKE_PROVIDER = "qiskit_ibm_runtime.fake_provider"


@dataclass(frozen=True)
class Snapshot:
    """One device snapshot's documents; ``properties`` is None where the package has none."""

    configuration: dict[str, Any]
    properties: dict[str, Any] | None


@functools.cache
def _snapshot_classes() -> dict[str, type]:
    provider = importlib.import_module(_FAKE_PROVIDER)
    base = importlib.import_module(f"{_FAKE_PROVIDER}.fake_backend").FakeBackendV2
    found: dict[str, type] = {}
    for class_name in dir(provider):
        cls = getattr(provider, class_name)
        name = getattr(cls, "backend_name", None)
        if isinstance(cls, type) and issubclass(cls, base) and isinstance(name, str):
            found.setdefault(name, cls)
    return found


@functools.cache
def _load(name: str) -> Snapshot | None:
    cls = _snapshot_classes().get(name)
    if cls is None:
        return None
    directory = Path(cls.dirname)
    configuration = json.loads((directory / cls.conf_filename).read_text())
    props_name = getattr(cls, "props_filename", None)
    props_path = directory / props_name if props_name else None
    properties = json.loads(props_path.read_text()) if props_path and props_path.is_file() else None
    return Snapshot(configuration, properties)


def snapshot(name: str) -> Snapshot | None:
    """The documents of backend ``name`` (``fake_montreal``), or None if it is no snapshot.

    Callers get their own copies: they may rename the backend in them.
    """
    found = _load(name)
    if found is None:
        return None
    return Snapshot(
        json.loads(json.dumps(found.configuration)),
        json.loads(json.dumps(found.properties)) if found.properties is not None else None,
    )
