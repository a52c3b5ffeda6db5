"""Named backends: the ideal Aer simulator and noisy simulators of real device snapshots."""

from __future__ import annotations

from qruntime.lazy_exports import lazy_exports

_SOURCES = {
    "info": ("BackendInfo",),
    "names": ("GPU_SIMULATOR", "IDEAL_SIMULATOR"),
    "registry": (
        "BackendEntry",
        "BackendRegistry",
        "build_default_registry",
        "default_registry",
        "get_backend",
    ),
    "requirements": ("check_backend_requirements",),
}

__all__ = sorted(name for names in _SOURCES.values() for name in names)

__getattr__, __dir__ = lazy_exports(__name__, globals(), _SOURCES)
