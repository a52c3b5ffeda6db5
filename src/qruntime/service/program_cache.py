"""What submit derives from a stored program (validated metadata, ``main``'s signature), kept
per program, so that a run of jobs does not validate the same metadata again for each one.

An entry serves only a program read back equal, field for field, to the one it was derived
from: an update on any replica changes ``updated_at`` and the changed fields, so the next
read derives afresh and an entry is never used stale. Changes through this replica also
drop the entry at once, so memory follows what exists.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

from qruntime.storage import StoredProgram

T = TypeVar("T")
#: Programs remembered at most; the least recently used goes first.
MAX_ENTRIES = 1024


class ProgramCache(Generic[T]):
    """program id → (the program as read, what ``derive`` made of it); thread-safe."""

    def __init__(self, derive: Callable[[StoredProgram], T], *, max_entries: int = MAX_ENTRIES):
        self._derive = derive
        self._max_entries = max_entries
        self._entries: OrderedDict[str, tuple[StoredProgram, T]] = OrderedDict()
        self._lock = threading.Lock()

    def derived(self, program: StoredProgram) -> T:
        """``derive(program)``, from the cache when ``program`` is the one it was made from."""
        with self._lock:
            entry = self._entries.get(program.id)
            if entry is not None and entry[0] == program:
                self._entries.move_to_end(program.id)
                return entry[1]
        value = self._derive(program)  # outside the lock: it may raise, and takes a while
        with self._lock:
            self._entries[program.id] = (program, value)
            self._entries.move_to_end(program.id)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return value

    def forget(self, program_id: str) -> None:
        """The program changed or went (here): drop what was derived from it."""
        with self._lock:
            self._entries.pop(program_id, None)

    def __len__(self) -> int:
        return len(self._entries)
