"""The typer application; each command lives in its own module."""

from __future__ import annotations

import typer

from qruntime.cli import (
    account_cmd,
    admin_cmd,
    backends_cmd,
    cancel_cmd,
    catalogue_cmd,
    delete_cmd,
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
    update_cmd,
    upload_cmd,
)

app = typer.Typer(
    name="qruntime",
    help="An open, self-hostable runtime for quantum programs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts say "[default: ...]" literally; no markup in them
)
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
# Backends, accounts, users; local runs and the server itself.
app.command("backends")(backends_cmd.backends)
app.add_typer(account_cmd.account)
app.add_typer(admin_cmd.admin)
app.command("run-local")(run_local_cmd.run_local)
app.command("serve")(serve_cmd.serve)
# The public catalogue.
app.add_typer(catalogue_cmd.catalogue)
app.command("publish")(publish_cmd.publish)
