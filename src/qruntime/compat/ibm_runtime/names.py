"""Backend names as today's IBM service spells them: ``ibm_brisbane`` is ``fake_brisbane``.

Only snapshots of devices of the kind IBM offers today are named (Eagle and Heron processors,
whose two-qubit gate is ``ecr`` or ``cz``); the retired ``cx`` devices stay with the 2021
dialect and the native API. The ideal simulator keeps its name, ``aer_simulator``.
"""

from __future__ import annotations

import functools

from qruntime.backends import BackendRegistry
from qruntime.backends.snapshots import snapshot
from qruntime.compat.common.backend_names import BackendNames
from qruntime.domain.errors import NotFoundError, UnknownBackendError

NAMES = BackendNames(ideal="aer_simulator", native_ideal="aer_simulator", device_prefix="ibm_")
#: Two-qubit gates of the processors IBM's service offers today.
TODAY_GATES = frozenset({"ecr", "cz"})


@functools.cache
def offered(registry: BackendRegistry) -> tuple[tuple[str, str], ...]:
    """``(name here, qruntime name)`` of every backend this dialect offers, simulator first."""
    names = [(NAMES.ideal, NAMES.native_ideal)] if NAMES.native_ideal in registry else []
    for name, native in NAMES.offered(registry):
        info = registry.info(native)
        if snapshot(native) is not None and TODAY_GATES & set(info.basis_gates):
            names.append((name, native))
    return tuple(names)


def to_native(registry: BackendRegistry, name: str) -> str:
    """The qruntime backend a name here stands for; UnknownBackendError naming the choices."""
    for offered_name, native in offered(registry):
        if offered_name == name:
            return native
    raise UnknownBackendError(name, [offered_name for offered_name, _ in offered(registry)])


def require(registry: BackendRegistry, name: str) -> str:
    """Like :func:`to_native`, but a backend that is not here is not found (a resource path)."""
    try:
        return to_native(registry, name)
    except UnknownBackendError:
        raise NotFoundError("backend", name) from None


def to_dialect(native: str) -> str:
    return NAMES.to_dialect(native)
