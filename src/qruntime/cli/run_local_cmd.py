"""``qruntime run-local``: run a program on this machine through the isolated worker path."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer

from qruntime.backends.names import IDEAL_SIMULATOR
from qruntime.cli import exit_codes
from qruntime.cli.render import event_json_line, print_event
from qruntime.domain.errors import QRuntimeError
from qruntime.domain.events import JobEvent, ResultEvent


def run_local(
    source: Annotated[Path, typer.Argument(help="The program's source, program_name.py.")],
    metadata: Annotated[
        Path | None,
        typer.Option(
            help="Its metadata JSON, to check inputs and backend. [default: SOURCE's .json, if any]"
        ),
    ] = None,
    inputs: Annotated[
        str, typer.Option(help="Inputs as a JSON object, or @FILE to read them from a file.")
    ] = "{}",
    backend: Annotated[str, typer.Option(help="Backend name (see `qruntime backends`).")] = (
        IDEAL_SIMULATOR
    ),
    max_execution_time: Annotated[
        float | None, typer.Option(help="Seconds before the job is stopped (default: metadata).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per event.")] = False,
) -> None:
    """Run SOURCE locally: interim results, logs and the final result as they happen.

    Metadata defaults to the .json beside SOURCE; inputs are checked as the server checks them.
    """
    from qruntime.service import local_run  # the executor and qiskit: only this command needs them

    try:
        program = local_run.LocalProgram.from_files(source, metadata)
        request = local_run.prepare_local_job(
            program,
            local_run.parse_inputs(_read_inputs(inputs)),
            backend,
            max_execution_time=max_execution_time,
        )
    except (QRuntimeError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exit_codes.BAD_INPUT) from None

    def emit(event: JobEvent) -> None:
        if as_json:
            sys.stdout.write(event_json_line(event) + "\n")
            sys.stdout.flush()
        else:
            print_event(event)

    last = asyncio.run(_run(request, emit))
    raise typer.Exit(exit_codes.OK if isinstance(last, ResultEvent) else exit_codes.JOB_FAILED)


async def _run(request, emit) -> JobEvent | None:
    from qruntime.service import local_run

    last = None
    async for event in local_run.run_local(request):
        emit(event)
        last = event
    return last


def _read_inputs(value: str) -> str:
    if value.startswith("@"):
        return Path(value[1:]).read_text(encoding="utf-8")
    return value
