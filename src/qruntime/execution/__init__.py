"""Running one job in its own OS process, behind the ``Executor`` interface."""

from qruntime.execution.executor import Executor
from qruntime.execution.local import LocalExecutor, LocalExecutorConfig
from qruntime.execution.messenger import UserMessenger
from qruntime.execution.request import JobRequest

__all__ = ["Executor", "JobRequest", "LocalExecutor", "LocalExecutorConfig", "UserMessenger"]
