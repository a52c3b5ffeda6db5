"""The path a job's scratch is bound to inside its root (job_root._make_path)."""

from __future__ import annotations

import os

from qruntime.execution.job_root import _make_path


def test_the_directories_made_on_the_way_are_0711_and_the_target_keeps_the_default(tmp_path):
    old = os.umask(0o022)
    try:
        target = tmp_path / "tmp" / "jobs-root" / "job-1"
        (tmp_path / "tmp").mkdir(mode=0o755)
        _make_path(str(target))
    finally:
        os.umask(old)
    assert target.is_dir()
    assert (tmp_path / "tmp" / "jobs-root").stat().st_mode & 0o777 == 0o711
    assert target.stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "tmp").stat().st_mode & 0o777 == 0o755  # there already: untouched


def test_an_existing_target_is_left_as_it_is(tmp_path):
    target = tmp_path / "work"
    target.mkdir(mode=0o700)
    target.chmod(0o700)
    _make_path(str(target))
    assert target.stat().st_mode & 0o777 == 0o700
