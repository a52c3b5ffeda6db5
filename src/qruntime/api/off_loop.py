"""The thin endpoints' hop to a worker thread: asyncio's executor hand-off, about half the
event loop's CPU of Starlette's ``run_in_threadpool`` (anyio's limiter, cancel scope and queue).

As many threads as anyio's default limit (40), so the endpoints wait for a thread no sooner
than before; the caller's context variables go with the call, as anyio's do.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["in_thread"]

T = TypeVar("T")

_THREADS = ThreadPoolExecutor(max_workers=40, thread_name_prefix="qruntime-request")


async def in_thread(function: Callable[..., T], /, *args: Any) -> T:
    """``function(*args)`` in a worker thread, awaited on the running loop."""
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(_THREADS, context.run, function, *args)
