"""Running one job in its own OS process, behind the ``Executor`` interface."""

from __future__ import annotations

from qruntime.lazy_exports import lazy_exports

_SOURCES = {
    "executor": ("Executor",),
    "local": ("LocalExecutor", "LocalExecutorConfig"),
    "messenger": ("UserMessenger",),
    "request": ("JobRequest",),
}

__all__ = sorted(name for names in _SOURCES.values() for name in names)

__getattr__, __dir__ = lazy_exports(__name__, globals(), _SOURCES)
