"""``qruntime program``: everything about one program."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from qruntime.cli.connection import JsonOption, TokenOption, UrlOption, connect
from qruntime.cli.errors import reports_errors
from qruntime.cli.program_view import program_json
from qruntime.client.lookup import resolve_program


@reports_errors
def program(
    program_id: Annotated[
        str, typer.Argument(help="The program's id or name (see `qruntime programs`).")
    ],
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Show a program: description, input parameters, interim results, return values."""
    with connect(url, token) as service:
        found = service.program(resolve_program(service, program_id).program_id, refresh=True)
        typer.echo(json.dumps(program_json(found), indent=2) if as_json else str(found))
