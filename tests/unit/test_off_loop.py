"""The thin endpoints' thread hop runs the call off the loop, with the caller's context."""

import asyncio
import contextvars
import threading

from qruntime.api.off_loop import in_thread

REQUEST = contextvars.ContextVar("request", default=None)


def test_the_call_runs_in_another_thread_and_sees_the_callers_context_variables():
    def seen(suffix: str) -> tuple[str | None, int]:
        return f"{REQUEST.get()}{suffix}", threading.get_ident()

    async def call() -> tuple[str | None, int]:
        REQUEST.set("job-7")
        return await in_thread(seen, "!")

    value, ident = asyncio.run(call())
    assert value == "job-7!" and ident != threading.get_ident()
