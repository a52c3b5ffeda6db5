"""Named backends: the ideal Aer simulator and noisy simulators of real device snapshots."""

from qruntime.backends.info import BackendInfo
from qruntime.backends.registry import (
    GPU_SIMULATOR,
    IDEAL_SIMULATOR,
    BackendEntry,
    BackendRegistry,
    build_default_registry,
    default_registry,
    get_backend,
)
from qruntime.backends.requirements import check_backend_requirements

__all__ = [
    "GPU_SIMULATOR",
    "IDEAL_SIMULATOR",
    "BackendEntry",
    "BackendInfo",
    "BackendRegistry",
    "build_default_registry",
    "check_backend_requirements",
    "default_registry",
    "get_backend",
]
