"""``qruntime publish``: check the catalogue, then bring each environment in line with it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from qruntime.catalogue import CatalogueProgram, load_catalogue
from qruntime.catalogue.checks import check_catalogue
from qruntime.catalogue.config import ConfigError, PublishConfig, load_config
from qruntime.catalogue.publisher import apply_plan, plan_for, select, summary
from qruntime.catalogue.sdk_target import SdkTarget
from qruntime.cli import exit_codes
from qruntime.cli.catalogue_cmd import default_tests_dir
from qruntime.cli.errors import fail, reports_errors
from qruntime.client import RuntimeService


@reports_errors
def publish(
    config: Annotated[Path, typer.Option(help="The publishing configuration.")] = Path(
        "program_config.yaml"
    ),
    env: Annotated[
        list[str] | None,
        typer.Option("--env", help="Publish to this environment only (repeatable). [default: all]"),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show each environment's plan; change nothing.")
    ] = False,
    prune: Annotated[
        bool,
        typer.Option("--prune", help="Also delete published programs no longer selected."),
    ] = False,
    catalogue: Annotated[
        Path | None,
        typer.Option(help="The catalogue directory. [default: runtime/ beside the config]"),
    ] = None,
    tests: Annotated[
        Path | None,
        typer.Option(help="Where the program tests are. [default: tests/programs]"),
    ] = None,
) -> None:
    """Publish runtime/ to the environments of program_config.yaml (create/update/remove)."""
    try:
        settings = load_config(config)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    directory = catalogue if catalogue is not None else config.parent / "runtime"
    programs = _checked_catalogue(settings, directory, tests or default_tests_dir(directory))
    environments = _environments(settings, env)
    credentials = {name: _credentials(settings, name) for name in environments}
    for name in environments:
        url, token = credentials[name]
        with RuntimeService(url, token) as service:
            target = SdkTarget(service)
            steps = plan_for(target, select(programs, settings.selection(name)), prune=prune)
            typer.echo(f"{name} ({url}):")
            for step in steps:
                typer.echo(f"  {step}")
            if dry_run:
                typer.echo("  dry run: nothing changed")
                continue
            typer.echo(f"  done: {summary(apply_plan(target, steps))}")


def _checked_catalogue(
    settings: PublishConfig, directory: Path, tests_dir: Path
) -> list[CatalogueProgram]:
    """The catalogue, or exit listing every problem (nothing is published then)."""
    problems = [str(problem) for problem in check_catalogue(directory, tests_dir)]
    programs = load_catalogue(directory) if not problems else []
    names = {program.name for program in programs}
    if programs:
        problems += [
            f"program_config.yaml: selects {name!r}, which is not in {directory}"
            for name in settings.unknown_programs(names)
        ]
    for problem in problems:
        typer.echo(problem)
    if problems:
        raise fail(
            f"not publishing: {len(problems)} problem(s); fix them and run "
            "qruntime catalogue check",
            exit_codes.PROBLEMS_FOUND,
        )
    return programs


def _environments(settings: PublishConfig, wanted: list[str] | None) -> list[str]:
    known = list(settings.environments)
    unknown = [name for name in wanted or [] if name not in settings.environments]
    if unknown:
        names, known_names = ", ".join(unknown), ", ".join(known)
        raise fail(f"unknown environment(s) {names}; the config has {known_names}")
    return list(dict.fromkeys(wanted)) if wanted else known


def _credentials(settings: PublishConfig, name: str) -> tuple[str, str]:
    """URL and token from the variables the config names; exit before publishing if unset."""
    environment = settings.environments[name]
    variables = (environment.url_env, environment.token_env)
    missing = [var for var in variables if not os.environ.get(var)]
    if missing:
        raise fail(f"environment {name!r} needs the variable(s) {', '.join(missing)} to be set")
    return os.environ[environment.url_env], os.environ[environment.token_env]
