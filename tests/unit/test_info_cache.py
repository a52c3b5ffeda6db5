"""The on-disk cache of device descriptions: a hit skips loading the snapshot; damage is a miss."""

from __future__ import annotations

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
