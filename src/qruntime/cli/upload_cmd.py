"""``qruntime upload``: add a program; prints only its id, for ``ID=$(qruntime upload ...)``.

A name you already own is refused (no silent copy) unless ``--replace`` (update that program in
place, keeping its id) or ``--copy``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from qruntime.cli.connection import TokenOption, UrlOption, connect
from qruntime.cli.errors import fail, reports_errors
from qruntime.client.lookup import owned_programs_named
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
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="If you own a program of this name, update it in place (same id); else upload it.",
        ),
    ] = False,
    copy: Annotated[
        bool,
        typer.Option("--copy", help="Upload it even if you own a program of this name."),
    ] = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Upload a program (private unless --public) and print its id."""
    if replace and copy:
        raise fail("--replace and --copy exclude each other")
    meta = read_metadata(metadata, source)
    if public:
        meta["is_public"] = True
    with connect(url, token) as service:
        owned = [] if copy else owned_programs_named(service, meta["name"])
        if len(owned) == 1 and replace:
            service.update_program(owned[0].program_id, data=source, metadata=meta)
            typer.echo(owned[0].program_id)
            return
        if owned:
            raise fail(_already_owned(meta["name"], [p.program_id for p in owned], replace))
        typer.echo(service.upload_program(source, meta, bare_name=bare_name))


def _already_owned(name: str, ids: list[str], replace: bool) -> str:
    listed = ", ".join(ids)
    if replace:  # several: which one to replace is the user's call
        return (
            f"you own {len(ids)} programs named {name!r} ({listed}); update one by its id: "
            "qruntime update ID --source SOURCE --metadata METADATA"
        )
    return (
        f"you already own a program named {name!r} ({listed}); pass --replace to update it "
        "in place, keeping its id, or --copy to upload another one"
    )
