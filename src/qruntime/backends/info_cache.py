"""Device snapshot descriptions kept on disk: loading 68 snapshots to list them takes seconds,
and the descriptions only change when the installed qiskit packages do."""

from __future__ import annotations

import json
import os
import tempfile
import threading
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from qruntime.backends.info import BackendInfo

CACHE_DIR_ENV = "QRUNTIME_CACHE_DIR"
_PACKAGES = ("qiskit", "qiskit-aer", "qiskit-ibm-runtime")


class InfoCache:
    """A JSON file of ``BackendInfo`` by name; unreadable or unwritable means no cache."""

    def __init__(self, path: Path | None):
        self.path = path
        self._lock = threading.Lock()
        self._infos: dict[str, BackendInfo] | None = None

    def get(self, name: str) -> BackendInfo | None:
        with self._lock:
            return self._load().get(name)

    def put(self, info: BackendInfo) -> None:
        with self._lock:
            infos = self._load()
            infos[info.name] = info
            self._save(infos)

    def devices(self) -> list[tuple[str, str]] | None:
        """(class name, backend name) of each device snapshot, as :meth:`put_devices` saved."""
        try:
            raw = json.loads(self._devices_path().read_text())  # type: ignore[union-attr]
            return [(str(class_name), str(name)) for class_name, name in raw]
        except (AttributeError, OSError, ValueError, TypeError):
            return None

    def put_devices(self, devices: list[tuple[str, str]]) -> None:
        """Remember the snapshot classes: finding them imports qiskit-ibm-runtime (a second)."""
        if self.path is not None:
            self._write(self._devices_path(), [list(device) for device in devices])

    def _devices_path(self) -> Path | None:
        return None if self.path is None else self.path.with_name(f"devices-{self.path.name}")

    def _load(self) -> dict[str, BackendInfo]:
        if self._infos is None:
            self._infos = {}
            if self.path is not None:
                try:
                    raw = json.loads(self.path.read_text())
                    self._infos = {name: BackendInfo.from_json(v) for name, v in raw.items()}
                except (OSError, ValueError, TypeError):
                    pass
        return self._infos

    def _save(self, infos: dict[str, BackendInfo]) -> None:
        if self.path is not None:
            self._write(self.path, {name: info.to_json() for name, info in infos.items()})

    @staticmethod
    def _write(path: Path, value: object) -> None:
        """Atomically, so that a reader never sees half a file; a failure means no cache."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".backend-infos-")
            with os.fdopen(fd, "w") as handle:
                json.dump(value, handle)
            os.replace(tmp, path)
        except OSError:
            pass


def default_info_cache() -> InfoCache:
    """Under ``$QRUNTIME_CACHE_DIR`` (default ``~/.cache/qruntime``), keyed by package versions."""
    root = os.environ.get(CACHE_DIR_ENV) or Path.home() / ".cache" / "qruntime"
    return InfoCache(Path(root) / f"backend-infos-{_versions()}.json")


def _versions() -> str:
    parts = []
    for package in _PACKAGES:
        try:
            parts.append(version(package))
        except PackageNotFoundError:
            parts.append("none")
    return "-".join(parts)
