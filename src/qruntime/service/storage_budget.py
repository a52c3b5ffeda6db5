"""The per-user storage budget: what a user keeps stored may not grow past it.

Checked where a user adds to it on purpose (a job's inputs and source at submit, a program's
source at upload or replacement); what a running job publishes is bounded by the per-job
limits instead, and counts against the next submit.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from qruntime.domain.errors import QuotaExceededError
from qruntime.service.principal import Principal
from qruntime.storage.usage import stored_bytes_of


class StorageBudgetError(QuotaExceededError):
    """The caller stores as much as the budget allows; deleting jobs or programs frees room."""


class StorageBudget:
    def __init__(self, max_bytes_per_user: int):
        self.max_bytes = max_bytes_per_user

    def check(self, session: Session, caller: Principal, adding: int, what: str) -> None:
        """Raise StorageBudgetError if ``adding`` bytes more would pass the caller's budget."""
        self.check_usage(stored_bytes_of(session, caller.user_id), adding, what)

    def check_usage(self, used: int, adding: int, what: str) -> None:
        """:meth:`check` for a caller who stores ``used`` bytes, counted by the caller."""
        if used + adding > self.max_bytes:
            raise StorageBudgetError(
                f"{what} would add {adding} bytes to the {used} you already store (programs, "
                "job inputs, results, interim results and logs), past your budget of "
                f"{self.max_bytes} bytes (QRUNTIME_MAX_STORED_BYTES_PER_USER); delete jobs "
                "or programs you no longer need"
            )
