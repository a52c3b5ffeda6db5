"""``qruntime backends``: what a program can run on."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from qruntime.backends import default_registry


def backends(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List the backends of this installation: qubits, noise, connectivity, gates."""
    infos = default_registry().infos()
    if as_json:
        typer.echo(json.dumps([info.to_json() for info in infos], indent=2))
        return
    table = Table("name", "qubits", "noisy", "coupling edges", "basis gates", title="backends")
    for info in infos:
        gates = ", ".join(g for g in info.basis_gates if not g.startswith(("save_", "set_")))
        table.add_row(
            info.name,
            str(info.num_qubits),
            "yes" if info.noisy else "no",
            "all-to-all" if info.coupling_map_edges is None else str(info.coupling_map_edges),
            gates if len(gates) <= 60 else gates[:57] + "...",
        )
    Console().print(table)
