"""``--limit``/``--skip`` for the list commands; a limit of 0 means everything."""

from __future__ import annotations

from typing import Annotated

import typer

LIMIT_HELP = "At most this many; 0 for all."
SkipOption = Annotated[int, typer.Option(min=0, help="Leave out this many first.")]


def sdk_limit(limit: int) -> int | None:
    """The SDK's spelling of "no limit" is None."""
    return None if limit == 0 else limit
