"""The jobs directory of a server: its own, locked; stale ones removed, older servers' spared."""

from __future__ import annotations

from pathlib import Path

from qruntime.execution.jobs_root import JobsRoot


def test_a_gone_servers_directory_goes_and_an_older_servers_busy_one_stays(tmp_path: Path):
    gone = tmp_path / "qruntime-jobs-p999999999-abcd1234"
    (gone / "job-x").mkdir(parents=True)
    older_busy = tmp_path / "qruntime-jobs-p028kwez"  # mkdtemp's name, which may begin with p
    (older_busy / "job-y").mkdir(parents=True)
    older_empty = tmp_path / "qruntime-jobs-k3j2h1g0"
    older_empty.mkdir()

    root = JobsRoot(tmp_path)
    mine = root.path()
    again = JobsRoot(tmp_path)  # a second server on the same machine

    assert not gone.exists() and not older_empty.exists()
    assert (older_busy / "job-y").is_dir()
    assert mine.is_dir()  # locked by its server: the second one leaves it alone
    assert mine.stat().st_mode & 0o777 == 0o711
    root.close()
    again.close()
    assert not mine.exists()
