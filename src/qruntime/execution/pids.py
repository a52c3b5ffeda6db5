"""Whether a process id names a live process: the one check every cleanup of a dead server's
leftovers (cgroups, replica rows, scratch directories) relies on."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists, ours or not (another user's answers EPERM: it exists)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
