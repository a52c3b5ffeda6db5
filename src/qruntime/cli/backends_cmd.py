"""``qruntime backends``: what a program can run on, as the server or this machine has it."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich.table import Table

from qruntime.cli.connection import JsonOption, TokenOption, UrlOption, connect
from qruntime.cli.errors import reports_errors
from qruntime.cli.tables import make_table, print_table


@reports_errors
def backends(
    local: Annotated[
        bool, typer.Option("--local", help="This installation's registry; needs no server.")
    ] = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """List the backends: qubits, noise, connectivity, gates."""
    if local:
        from qruntime.backends import default_registry  # builds simulators: only when asked

        infos = [info.to_json() for info in default_registry().infos()]
    else:
        with connect(url, token) as service:
            infos = [asdict(info) for info in service.backends()]
    if as_json:
        typer.echo(json.dumps(infos, indent=2))
        return
    print_table(_table(infos, "local backends" if local else "backends"))


def _table(infos: list[dict[str, Any]], title: str) -> Table:
    rows = make_table("name", "qubits", "noisy", "coupling edges", "basis gates", title=title)
    for info in infos:
        gates = ", ".join(
            g for g in info.get("basis_gates") or [] if not g.startswith(("save_", "set_"))
        )
        edges = info.get("coupling_map_edges")
        rows.add_row(
            info["name"],
            str(info.get("num_qubits")),
            "yes" if info.get("noisy") else "no",
            "all-to-all" if edges is None else str(edges),
            gates if len(gates) <= 60 else gates[:57] + "...",
        )
    return rows
