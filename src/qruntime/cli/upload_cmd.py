"""``qruntime upload``: add a program; prints only its id, for ``ID=$(qruntime upload ...)``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from qruntime.cli.connection import TokenOption, UrlOption, connect
from qruntime.cli.errors import reports_errors
from qruntime.client.uploads import read_metadata


@reports_errors
def upload(
    source: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="The program, program_name.py.")
    ],
    metadata: Annotated[
        Path | None,
        typer.Argument(
            exists=True,
            dir_okay=False,
            show_default=False,
            help="Its metadata JSON. [default: SOURCE with a .json suffix]",
        ),
    ] = None,
    public: Annotated[
        bool, typer.Option("--public", help="Let every user see and run it.")
    ] = False,
    bare_name: Annotated[
        bool, typer.Option("--bare-name", help="Use the program name as its id (admins only).")
    ] = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Upload a program (private unless --public) and print its id."""
    meta: Path | dict | None = metadata
    if public:
        meta = {**read_metadata(metadata, source), "is_public": True}
    with connect(url, token) as service:
        typer.echo(service.upload_program(source, meta, bare_name=bare_name))
