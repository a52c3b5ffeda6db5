"""The typer application; each command lives in its own module."""

from __future__ import annotations

import signal
from typing import Annotated, Any

import typer

from qruntime import __version__
from qruntime.cli import (
    account_cmd,
    admin_cmd,
    backends_cmd,
    cancel_cmd,
    catalogue_cmd,
    delete_cmd,
    environment_cmd,
    job_cmd,
    jobs_cmd,
    logs_cmd,
    program_cmd,
    programs_cmd,
    publish_cmd,
    result_cmd,
    run_cmd,
    run_local_cmd,
    serve_cmd,
    sessions_cmd,
    update_cmd,
    upload_cmd,
)


class QRuntimeApp(typer.Typer):
    """The command as a process runs it: Ctrl-C works even where the shell ignored SIGINT."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        restore_ctrl_c()
        return super().__call__(*args, **kwargs)


def restore_ctrl_c() -> None:
    """A shell starts background commands with SIGINT ignored, and Python keeps it so;
    without the default handler, Ctrl-C (or ``kill -INT``) could not stop a command."""
    signal.signal(signal.SIGINT, signal.default_int_handler)


app = QRuntimeApp(
    name="qruntime",
    help="An open, self-hostable runtime for quantum programs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts say "[default: ...]" literally; no markup in them
)


def _print_version(wanted: bool) -> None:
    if wanted:
        typer.echo(f"qruntime {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """An open, self-hostable runtime for quantum programs."""


# Programs.
app.command("programs")(programs_cmd.programs)
app.command("program")(program_cmd.program)
app.command("upload")(upload_cmd.upload)
app.command("update")(update_cmd.update)
app.command("delete")(delete_cmd.delete)
# Jobs.
app.command("run")(run_cmd.run)
app.command("jobs")(jobs_cmd.jobs)
app.command("job")(job_cmd.job)
app.command("result")(result_cmd.result)
app.command("logs")(logs_cmd.logs)
app.command("cancel")(cancel_cmd.cancel)
app.add_typer(sessions_cmd.sessions)
# Backends, accounts, users; local runs and the server itself.
app.command("backends")(backends_cmd.backends)
app.command("environment")(environment_cmd.environment)
app.add_typer(account_cmd.account)
app.add_typer(admin_cmd.admin)
app.command("run-local")(run_local_cmd.run_local)
app.command("serve")(serve_cmd.serve)
# The public catalogue.
app.add_typer(catalogue_cmd.catalogue)
app.command("publish")(publish_cmd.publish)
