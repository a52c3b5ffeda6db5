"""The jobs directory of a server: its own, locked; stale ones removed, older servers' spared."""

from __future__ import annotations

import os
from pathlib import Path

from qruntime.execution.jobs_root import JobsRoot, unowned_workdir


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


def test_job_directories_of_gone_servers_are_swept_at_start(tmp_path: Path):
    """Directories of jobs that ran without a uid of their own (``qruntime-job-p<pid>-...``):
    a dead server's go when the next server starts, a live one's stay."""
    dead = tmp_path / "qruntime-job-p999999999-k3j2h1g0"
    (dead / "left-behind.txt").parent.mkdir()
    (dead / "left-behind.txt").write_text("1.8 GB, say")
    alive = unowned_workdir(tmp_path)
    (alive / "in-use.txt").write_text("a running job's file")
    older_empty, older_busy = tmp_path / "qruntime-job-a1b2c3d4", tmp_path / "qruntime-job-z9y8x7w6"
    older_empty.mkdir()
    (older_busy / "file").parent.mkdir()
    (older_busy / "file").write_text("x")

    JobsRoot(tmp_path).close()  # what a server does at start

    assert not dead.exists() and not older_empty.exists()
    assert (alive / "in-use.txt").is_file() and (older_busy / "file").is_file()
    assert alive.name.startswith(f"qruntime-job-p{os.getpid()}-")
