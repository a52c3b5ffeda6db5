"""The typer application; each command lives in its own module."""

from __future__ import annotations

import typer

from qruntime.cli import backends_cmd, run_local_cmd

app = typer.Typer(
    name="qruntime",
    help="An open, self-hostable runtime for quantum programs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("run-local")(run_local_cmd.run_local)
app.command("backends")(backends_cmd.backends)
