"""``qruntime programs``: the programs you can run, in the 2021 service's layout."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from qruntime.cli.connection import JsonOption, TokenOption, UrlOption, connect
from qruntime.cli.errors import reports_errors
from qruntime.cli.paging import LIMIT_HELP, SkipOption, sdk_limit
from qruntime.cli.program_view import program_json


@reports_errors
def programs(
    detailed: Annotated[
        bool, typer.Option("--detailed", help="Show parameters, results and requirements too.")
    ] = False,
    limit: Annotated[int, typer.Option(min=0, help=LIMIT_HELP)] = 20,
    skip: SkipOption = 0,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """List public programs and your own, ordered by name."""
    with connect(url, token) as service:
        found = service.programs(limit=sdk_limit(limit), skip=skip)
        if as_json:
            typer.echo(json.dumps([program_json(p) for p in found], indent=2))
        elif not found:
            typer.echo("no programs", err=True)
        else:
            service.pprint_programs(detailed=detailed, limit=sdk_limit(limit), skip=skip)
