"""A dialect's backend names and qruntime's: ``ibmq_montreal`` is ``fake_montreal``.

Each dialect has its own rule; the names it offers are the ones the registry can build.
"""

from __future__ import annotations

from dataclasses import dataclass

from qruntime.backends import BackendRegistry
from qruntime.domain.errors import NotFoundError

FAKE_PREFIX = "fake_"


@dataclass(frozen=True)
class BackendNames:
    """``ideal`` is the dialect's name for the ideal simulator; devices are ``prefix + device``."""

    ideal: str
    native_ideal: str
    device_prefix: str

    def to_native(self, name: str) -> str | None:
        if name == self.ideal:
            return self.native_ideal
        if name.startswith(self.device_prefix) and len(name) > len(self.device_prefix):
            return FAKE_PREFIX + name.removeprefix(self.device_prefix)
        return None

    def to_dialect(self, native: str) -> str:
        """The dialect's name for a qruntime backend (its own name if the dialect has none)."""
        if native == self.native_ideal:
            return self.ideal
        if native.startswith(FAKE_PREFIX):
            return self.device_prefix + native.removeprefix(FAKE_PREFIX)
        return native

    def require(self, registry: BackendRegistry, name: str) -> str:
        """The qruntime name of a backend the dialect names; NotFoundError if there is none."""
        native = self.to_native(name)
        if native is None or native not in registry:
            raise NotFoundError("backend", name)
        return native

    def offered(self, registry: BackendRegistry) -> list[tuple[str, str]]:
        """``(dialect name, qruntime name)`` of every backend the dialect can name, ideal first."""
        names = []
        for native in registry.names():
            dialect = self.to_dialect(native)
            if dialect != native and self.to_native(dialect) == native:
                names.append((dialect, native))
        return sorted(names, key=lambda pair: (pair[1] != self.native_ideal, pair[0]))
