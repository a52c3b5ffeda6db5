"""``qruntime catalogue check``: the rules every program in ``runtime/`` must meet."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from qruntime.catalogue.checks import check_catalogue
from qruntime.cli import exit_codes

catalogue = typer.Typer(
    name="catalogue", help="The public program catalogue (runtime/).", no_args_is_help=True
)

DEFAULT_TESTS = Path("tests/programs")


@catalogue.command("check")
def check(
    directory: Annotated[
        Path, typer.Argument(help="The catalogue directory.", show_default=True)
    ] = Path("runtime"),
    tests: Annotated[
        Path | None,
        typer.Option(
            help="Where each program's test_<module>.py must be. [default: tests/programs "
            "beside the catalogue directory]",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Check file names, metadata, main's signature, parameter docs and tests; one line each."""
    tests_dir = tests if tests is not None else default_tests_dir(directory)
    problems = check_catalogue(directory, tests_dir)
    for problem in problems:
        typer.echo(str(problem))
    if problems:
        typer.echo(f"{len(problems)} problem(s) in {directory}", err=True)
        raise typer.Exit(exit_codes.PROBLEMS_FOUND)
    count = len(list(directory.glob("*.py")))
    typer.echo(f"{count} program(s) in {directory}: all checks passed")


def default_tests_dir(directory: Path) -> Path:
    """``tests/programs`` in the repository that holds the catalogue directory."""
    return directory.parent / DEFAULT_TESTS
