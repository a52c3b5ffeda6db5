"""Tables on stdout that never cut an id short, on a terminal or in a pipe."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Column, Table

#: Wide enough for any row; a table only takes the width its content needs.
PIPE_WIDTH = 1000


def make_table(*headers: str, title: str | None = None) -> Table:
    """Columns that keep their values whole; on a narrow terminal the last ones wrap."""
    first, *rest = headers
    return Table(Column(first, no_wrap=True), *rest, title=title)


def print_table(rendered: Table) -> None:
    width = None if sys.stdout.isatty() else PIPE_WIDTH
    Console(width=width, soft_wrap=True).print(rendered)
