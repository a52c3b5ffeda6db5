"""Named backends a program can run on, built lazily and cached per process.

``aer_simulator`` is the ideal simulator; ``fake_<device>`` is Aer with the noise model and
coupling map of a real device calibration snapshot from ``qiskit_ibm_runtime.fake_provider``.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qruntime.backends.info import BackendInfo
from qruntime.backends.info_cache import InfoCache, default_info_cache
from qruntime.backends.names import GPU_SIMULATOR, IDEAL_SIMULATOR
from qruntime.domain.errors import UnknownBackendError

if TYPE_CHECKING:  # the server imports this; Qiskit loads only where a backend is built
    from qiskit.providers import BackendV2

_FAKE_PROVIDER = "qiskit_ibm_runtime.fake_provider"


@dataclass(frozen=True)
class BackendEntry:
    """How to describe a backend without simulating anything, and how to build it."""

    name: str
    describe: Callable[[], BackendInfo]
    build: Callable[[], BackendV2]


class BackendRegistry:
    """Looks backends up by name; each is described and built at most once."""

    def __init__(self, entries: Iterable[BackendEntry]):
        self._entries = {entry.name: entry for entry in entries}
        self._infos: dict[str, BackendInfo] = {}
        self._backends: dict[str, BackendV2] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def info(self, name: str) -> BackendInfo:
        entry = self._entry(name)
        with self._lock:
            if name not in self._infos:
                self._infos[name] = entry.describe()
            return self._infos[name]

    def infos(self) -> list[BackendInfo]:
        return [self.info(name) for name in self.names()]

    def get(self, name: str) -> BackendV2:
        """The backend object itself: a real Qiskit ``BackendV2`` (an Aer simulator)."""
        entry = self._entry(name)
        with self._lock:
            if name not in self._backends:
                self._backends[name] = entry.build()
            return self._backends[name]

    def _entry(self, name: str) -> BackendEntry:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownBackendError(name, self.names()) from None


def _describe(backend: BackendV2, name: str, description: str, noisy: bool) -> BackendInfo:
    coupling = backend.coupling_map
    return BackendInfo(
        name=name,
        description=description,
        num_qubits=backend.num_qubits,
        basis_gates=sorted(backend.operation_names),
        coupling_map_edges=len(coupling.get_edges()) if coupling is not None else None,
        noisy=noisy,
    )


def _ideal_entry(name: str, device: str, cache: InfoCache) -> BackendEntry:
    def build() -> BackendV2:
        from qiskit_aer import AerSimulator

        return AerSimulator(device=device)

    def describe() -> BackendInfo:
        cached = cache.get(name)  # describing builds Aer: imports a server otherwise never needs
        if cached is not None:
            return cached
        info = _describe(build(), name, f"Ideal (noiseless) Aer simulator on {device}.", False)
        info = BackendInfo(**{**info.to_json(), "device": device})
        cache.put(info)
        return info

    return BackendEntry(name, describe, build)


def _fake_device_entry(class_name: str, name: str, cache: InfoCache) -> BackendEntry:
    def snapshot() -> BackendV2:
        return getattr(importlib.import_module(_FAKE_PROVIDER), class_name)()

    def build() -> BackendV2:
        from qiskit_aer import AerSimulator

        backend = AerSimulator.from_backend(snapshot())
        backend.name = name  # Aer would call it "aer_simulator_from(fake_x)"
        return backend

    def describe() -> BackendInfo:
        cached = cache.get(name)
        if cached is not None:
            return cached
        device = name.removeprefix("fake_")
        text = f"Aer with the noise model and coupling map of the {device} device snapshot."
        info = _describe(snapshot(), name, text, True)
        cache.put(info)
        return info

    return BackendEntry(name, describe, build)


def _fake_device_entries(cache: InfoCache) -> list[BackendEntry]:
    """One entry per device snapshot class; names come from the class (or the cache's list of
    them), so nothing is loaded yet."""
    devices = cache.devices()
    if devices is None:
        devices = _snapshot_classes()
        cache.put_devices(devices)
    return [_fake_device_entry(class_name, name, cache) for class_name, name in devices]


def _snapshot_classes() -> list[tuple[str, str]]:
    """(class name, backend name) of each device snapshot the installed provider has."""
    provider = importlib.import_module(_FAKE_PROVIDER)
    snapshot_base = importlib.import_module(f"{_FAKE_PROVIDER}.fake_backend").FakeBackendV2
    found: dict[str, str] = {}
    for class_name in dir(provider):
        cls = getattr(provider, class_name)
        name = getattr(cls, "backend_name", None)
        if isinstance(cls, type) and issubclass(cls, snapshot_base) and isinstance(name, str):
            found.setdefault(name, class_name)
    return [(class_name, name) for name, class_name in found.items()]


#: Device nodes of the GPUs Aer can use (CUDA; ROCm builds use ``/dev/kfd``).
_GPU_DEVICE_NODES = ("nvidia", "kfd")


def gpu_available(dev: str = "/dev") -> bool:
    """Whether Aer lists a GPU device here (asking starts Aer's threads). Without a GPU's
    device node Aer cannot see one, so a server on such a host does not load Aer to ask."""
    try:
        nodes = os.listdir(dev)
    except OSError:
        nodes = []
    if not any(node.startswith(_GPU_DEVICE_NODES) for node in nodes):
        return False
    from qiskit_aer import AerSimulator

    return "GPU" in AerSimulator().available_devices()


def build_default_registry(
    *,
    include_fake_devices: bool = True,
    info_cache: InfoCache | None = None,
    gpu: bool | None = None,
) -> BackendRegistry:
    """The registry every server and worker uses unless configured otherwise.

    ``gpu`` says whether to list the GPU simulator; None asks Aer, which starts threads (a
    zygote that must fork safely passes the answer it was given instead).
    """
    cache = info_cache or default_info_cache()
    entries = [_ideal_entry(IDEAL_SIMULATOR, "CPU", cache)]
    if gpu_available() if gpu is None else gpu:
        entries.append(_ideal_entry(GPU_SIMULATOR, "GPU", cache))
    if include_fake_devices:
        entries.extend(_fake_device_entries(cache))
    return BackendRegistry(entries)


_default: BackendRegistry | None = None


def default_registry() -> BackendRegistry:
    global _default
    if _default is None:
        _default = build_default_registry()
    return _default


def use_default_registry(registry: BackendRegistry) -> None:
    """Make ``registry`` this process's default (a zygote builds it before forking workers)."""
    global _default
    _default = registry


def get_backend(name: str) -> BackendV2:
    """Shortcut for ``default_registry().get(name)``."""
    return default_registry().get(name)
