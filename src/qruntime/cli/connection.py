"""The ``--url``/``--token`` options every server command takes, and the service they build."""

from __future__ import annotations

from typing import Annotated

import typer

from qruntime.client import RuntimeService

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="Server URL. [default: QRUNTIME_URL, else the saved account]",
        show_default=False,
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        help="Bearer token. [default: QRUNTIME_TOKEN, else the saved account]",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def connect(url: str | None, token: str | None) -> RuntimeService:
    """A service for the flags, else the environment, else the saved account (SDK rules)."""
    return RuntimeService(url=url, token=token)
