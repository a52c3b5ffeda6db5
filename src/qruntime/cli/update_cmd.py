"""``qruntime update``: change a program's source, metadata or visibility."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from qruntime.cli.connection import TokenOption, UrlOption, connect
from qruntime.cli.errors import fail, reports_errors
from qruntime.client.lookup import resolve_program


@reports_errors
def update(
    program_id: Annotated[str, typer.Argument(help="The program's id or name.")],
    source: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="New source file.")
    ] = None,
    metadata: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="Metadata JSON; may be partial."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="New program name.")] = None,
    description: Annotated[str | None, typer.Option(help="New description.")] = None,
    max_execution_time: Annotated[
        int | None, typer.Option(help="New default time limit, in seconds.")
    ] = None,
    public: Annotated[
        bool | None,
        typer.Option("--public/--private", help="Publish it, or make it private again."),
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Update a program you own; options left out stay as they are."""
    fields = (source, metadata, name, description, max_execution_time)
    if all(value is None for value in fields) and public is None:
        raise fail(
            "nothing to update: pass --source, --metadata, --name, --description, "
            "--max-execution-time, --public or --private"
        )
    with connect(url, token) as service:
        program_id = resolve_program(service, program_id).program_id
        if any(value is not None for value in fields):
            service.update_program(
                program_id,
                data=source,
                metadata=metadata,
                name=name,
                description=description,
                max_execution_time=max_execution_time,
            )
        if public is not None:
            service.set_program_visibility(program_id, public)
    typer.echo(f"updated program {program_id}")
