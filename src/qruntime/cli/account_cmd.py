"""``qruntime account``: the saved server and token the other commands use by default."""

from __future__ import annotations

from typing import Annotated

import typer

from qruntime.accounts import accounts_file
from qruntime.cli.errors import fail, reports_errors
from qruntime.client import RuntimeService

account = typer.Typer(
    name="account", help="Saved credentials for the other commands.", no_args_is_help=True
)


@account.command("save")
@reports_errors
def save(
    url: Annotated[str, typer.Option(help="The server's URL, e.g. http://127.0.0.1:8000.")],
    token: Annotated[str, typer.Option(help="Your bearer token.")],
    name: Annotated[
        str | None, typer.Option(help="Save under this name. [default: default]")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a saved account of that name.")
    ] = False,
) -> None:
    """Save a URL and token (file mode 0600) and make them the default."""
    try:
        saved = RuntimeService.save_account(url, token, name=name, overwrite=overwrite)
    except ValueError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"saved account {saved.name!r} for {saved.url} in {accounts_file()}")
