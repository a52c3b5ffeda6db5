"""The on-disk cache of device descriptions: a hit skips loading the snapshot; damage is a miss."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from qruntime.backends.info import BackendInfo
from qruntime.backends.info_cache import InfoCache

INFO = BackendInfo("fake_x", "a device", 5, ["cx", "measure"], 8, True)


def test_a_stored_description_is_read_back_by_another_cache(tmp_path: Path):
    path = tmp_path / "cache" / "infos.json"
    InfoCache(path).put(INFO)
    assert InfoCache(path).get("fake_x") == INFO
    assert InfoCache(path).get("fake_y") is None


def test_a_damaged_file_is_a_miss_and_gets_rewritten(tmp_path: Path):
    path = tmp_path / "infos.json"
    path.write_text("{not json")
    cache = InfoCache(path)
    assert cache.get("fake_x") is None
    cache.put(INFO)
    assert InfoCache(path).get("fake_x") == INFO


def test_an_unwritable_place_only_disables_the_cache(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    cache = InfoCache(blocker / "sub" / "infos.json")  # a file where a directory should be
    cache.put(INFO)
    assert cache.get("fake_x") == INFO  # still remembered in memory
    assert InfoCache(None).get("fake_x") is None


def test_the_list_of_snapshot_classes_is_kept_and_damage_is_a_miss(tmp_path: Path):
    path = tmp_path / "infos.json"
    assert InfoCache(path).devices() is None
    InfoCache(path).put_devices([("FakeX", "fake_x"), ("FakeY", "fake_y")])
    assert InfoCache(path).devices() == [("FakeX", "fake_x"), ("FakeY", "fake_y")]
    path.with_name(f"devices-{path.name}").write_text("[[1]")
    assert InfoCache(path).devices() is None
    assert InfoCache(None).devices() is None


def test_a_registry_from_the_cached_list_lists_devices_without_importing_the_provider(
    tmp_path: Path,
):
    """Finding the snapshot classes imports qiskit-ibm-runtime, a second of every server start."""
    probe = (
        "import sys\n"
        "from qruntime.backends.registry import build_default_registry\n"
        "names = build_default_registry(gpu=False).names()\n"
        "print(len(names), 'fake_manila' in names, 'qiskit_ibm_runtime' in sys.modules)\n"
    )
    env = {**os.environ, "QRUNTIME_CACHE_DIR": str(tmp_path)}
    first = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    again = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)

    count, manila, imported = first.stdout.split()
    assert int(count) > 60 and manila == "True" and imported == "True", first.stderr
    assert again.stdout.split() == [count, "True", "False"], again.stderr
