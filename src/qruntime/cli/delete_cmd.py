"""``qruntime delete``: remove a program; its jobs keep their records."""

from __future__ import annotations

from typing import Annotated

import typer

from qruntime.cli.connection import TokenOption, UrlOption, connect
from qruntime.cli.errors import reports_errors
from qruntime.client.lookup import resolve_program


@reports_errors
def delete(
    program_id: Annotated[str, typer.Argument(help="The program's id or name.")],
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Delete a program you own."""
    with connect(url, token) as service:
        program_id = resolve_program(service, program_id).program_id
        service.delete_program(program_id)
    typer.echo(f"deleted program {program_id}")
