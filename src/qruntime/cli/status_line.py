"""A job's status on stderr while it is followed: one live line on a terminal, plain lines else.

stdout stays clean for interim results and the result, so ``qruntime run ... > out`` works.
"""

from __future__ import annotations

import sys
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text

_STYLES = {"DONE": "bold green", "ERROR": "bold red", "CANCELLED": "bold yellow"}


class StatusLine:
    """Shows ``job <id>: <STATUS> (<reason>)`` each time it changes."""

    def __init__(self, job_id: str, console: Console | None = None) -> None:
        self._job_id = job_id
        self._console = console or Console(stderr=True, soft_wrap=True, highlight=False)
        self._live: Live | None = None
        self._spinner = Spinner("dots")
        self._shown: str | None = None
        self._status = ""
        self._interims = 0

    def __enter__(self) -> StatusLine:
        if self._console.is_terminal:
            # Lines printed to a terminal stdout must pass through Live to land above it;
            # a redirected stdout must not, or they would end up on stderr.
            self._live = Live(
                self._spinner,
                console=self._console,
                transient=True,
                redirect_stdout=sys.stdout.isatty(),
                redirect_stderr=False,
            )
            self._live.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
            if exc_type is None:
                self._print(self._status)

    def show(self, status: str, reason: str | None = None) -> None:
        self._status = f"{status} ({reason})" if reason else status
        if self._live is None:
            if self._status != self._shown:
                self._print(self._status)
        else:
            self._refresh()

    def interim_arrived(self) -> None:
        self._interims += 1
        if self._live is not None:
            self._refresh()

    def _refresh(self) -> None:
        text = Text(f"job {self._job_id}: ") + self._styled(self._status)
        if self._interims:
            plural = "s" if self._interims > 1 else ""
            text.append(f" · {self._interims} interim result{plural}", style="dim")
        self._spinner.update(text=text)

    def _print(self, status: str) -> None:
        self._shown = status
        self._console.print(Text(f"job {self._job_id}: ") + self._styled(status))

    def _styled(self, status: str) -> Text:
        return Text(status, style=_STYLES.get(status.split(" ")[0], "bold"))
