"""``qruntime environment``: the Python packages jobs can import, on the server or here."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from qruntime.cli.connection import JsonOption, TokenOption, UrlOption, connect
from qruntime.cli.errors import reports_errors
from qruntime.cli.tables import make_table, print_table


@reports_errors
def environment(
    local: Annotated[
        bool, typer.Option("--local", help="This installation's packages; needs no server.")
    ] = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """List the Python packages a job can import (those installed with the server)."""
    if local:
        from qruntime.execution.environment import installed_packages, python_version

        found = {
            "python": python_version(),
            "packages": [{"name": n, "version": v} for n, v in installed_packages()],
        }
    else:
        with connect(url, token) as service:
            found = service.environment()
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    table = make_table("package", "version", title=f"Python {found['python']}")
    for package in found["packages"]:
        table.add_row(package["name"], package["version"])
    print_table(table)
