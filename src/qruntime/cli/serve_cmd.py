"""``qruntime serve``: the hosted service (FastAPI under uvicorn) on this machine."""

from __future__ import annotations

import faulthandler
import logging
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError

from qruntime.settings import DEFAULT_PORT, Settings

if TYPE_CHECKING:
    import uvicorn

    from qruntime.service.server_lock import ServerLocks

#: Seconds uvicorn waits for open requests (event streams) when asked to stop.
GRACEFUL_SHUTDOWN_SECONDS = 5
#: uvicorn's HTTP/1.1 parser and event loop, named so that whatever else is installed does not
#: change them: httptools and uvloop took ~0.35 and ~0.4 ms of server CPU off a job but added
#: 0.01-0.02 ms to each interim result streamed (docs/performance.md, round 7).
HTTP_PARSER = "h11"
EVENT_LOOP = "asyncio"


def serve(
    host: Annotated[
        str | None, typer.Option(help="Interface to bind. [env QRUNTIME_HOST; default 127.0.0.1]")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help=f"TCP port. [env QRUNTIME_PORT; default {DEFAULT_PORT}]")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Where the SQLite database and admin token live. [default ./.qruntime]"),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db. [default SQLite]"
        ),
    ] = None,
    max_concurrent_jobs: Annotated[
        int | None, typer.Option(help="Jobs running at once. [default: CPU count]")
    ] = None,
    worker_pool_size: Annotated[
        int | None,
        typer.Option(
            help="Idle workers forked ahead from a zygote that has imported qiskit; 0 starts a "
            "fresh Python per job. [default 2]"
        ),
    ] = None,
    catalogue: Annotated[
        Path | None,
        typer.Option(
            help="Publish the program catalogue in this directory (e.g. runtime) at start: "
            "public, under bare names; changed programs are updated. [env QRUNTIME_CATALOGUE_DIR]"
        ),
    ] = None,
    executor: Annotated[
        str | None,
        typer.Option(
            help="Where jobs run: local (worker processes here) or ray (a Ray cluster; needs "
            "--ray-address, PostgreSQL and the qruntime[ray] extra). [env QRUNTIME_EXECUTOR; "
            "default local]"
        ),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(help="The Ray head's HOST:PORT. [env QRUNTIME_RAY_ADDRESS]"),
    ] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option(
            help="PEM certificate (chain): serve HTTPS and WSS. [env QRUNTIME_TLS_CERTFILE]"
        ),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option(help="PEM private key of --tls-cert. [env QRUNTIME_TLS_KEYFILE]"),
    ] = None,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            help="Proxies whose X-Forwarded-For/-Proto are believed: addresses or networks, "
            "comma-separated, or '*'. [env QRUNTIME_FORWARDED_ALLOW_IPS; default none]"
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Run the qruntime server until interrupted (Ctrl-C)."""
    import uvicorn

    from qruntime.api import create_app
    from qruntime.storage.readiness import DatabaseNotReadyError, check_database_ready

    flags: dict[str, Any] = {
        "host": host,
        "port": port,
        "data_dir": data_dir,
        "database_url": database_url,
        "max_concurrent_jobs": max_concurrent_jobs,
        "worker_pool_size": worker_pool_size,
        "catalogue_dir": catalogue,
        "executor": executor,
        "ray_address": ray_address,
        "tls_certfile": tls_cert,
        "tls_keyfile": tls_key,
        "forwarded_allow_ips": forwarded_allow_ips,
    }
    try:
        settings = Settings(**{k: v for k, v in flags.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        typer.echo(f"error: invalid settings: {problems}", err=True)
        raise typer.Exit(2) from None
    if (settings.tls_certfile is None) != (settings.tls_keyfile is None):
        typer.echo("error: give both --tls-cert and --tls-key, or neither", err=True)
        raise typer.Exit(2)
    for problem in settings.sandbox_problems():
        typer.echo(f"error: not starting: {problem}", err=True)
    if settings.sandbox_problems():
        raise typer.Exit(2)
    _refuse_broken_catalogue(settings.catalogue_dir)
    _refuse_unusable_executor(settings)
    locks, listener = _claim(settings)
    _configure_logging(log_level)
    # A crash in native code (Qiskit's or Aer's Rust/C++, sqlite3, psycopg) leaves every
    # thread's Python stack in the server's log, not only a line in the kernel's.
    faulthandler.enable()
    try:
        check_database_ready(settings.resolved_database_url)
    except DatabaseNotReadyError as exc:
        listener.close()
        locks.release()
        typer.echo(f"error: not starting: {exc}", err=True)
        raise typer.Exit(2) from None
    if settings.port == 0:  # the kernel chose the port: clients and the lock need the real one
        settings = settings.model_copy(update={"port": listener.getsockname()[1]})
        locks.describe(settings.public_url)
    from qruntime.service.container import Services

    services = Services.build(settings)
    services.locks = locks  # held since before the port was bound; released below
    config = uvicorn_config(create_app(settings, services=services), settings, log_level)
    try:
        uvicorn.Server(config).run(sockets=[listener])
    finally:
        listener.close()
        locks.release()


def uvicorn_config(app: Any, settings: Settings, log_level: str) -> uvicorn.Config:
    """How uvicorn serves ``app``: the address, TLS, proxies trusted, HTTP parser and loop."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level.lower(),
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        ssl_certfile=settings.tls_certfile,
        ssl_keyfile=settings.tls_keyfile,
        # Forwarded headers only from the proxies named (none by default): anyone else could
        # claim any address and dodge the per-address limit on failed authentications.
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips or None,
        http=HTTP_PARSER,  # not "auto": the same parser and loop wherever it is installed
        loop=EVENT_LOOP,
    )


def _claim(settings: Settings) -> tuple[ServerLocks, socket.socket]:
    """The data dir (and SQLite file) locked and the port bound, before any job is touched."""
    from qruntime.service.server_lock import (
        PortUnavailableError,
        ServerAlreadyRunningError,
        bind_listener,
        hold_server_locks,
    )

    try:
        locks = hold_server_locks(
            settings.data_dir, settings.resolved_database_url, settings.public_url
        )
    except ServerAlreadyRunningError as exc:
        typer.echo(f"error: not starting: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        return locks, bind_listener(settings.host, settings.port)
    except PortUnavailableError as exc:
        locks.release()
        typer.echo(f"error: not starting: {exc}", err=True)
        raise typer.Exit(2) from None


def _refuse_broken_catalogue(directory: Path | None) -> None:
    """Say what is wrong with the catalogue before starting, instead of a failed start-up."""
    if directory is None:
        return
    from qruntime.catalogue.checks import check_catalogue

    problems = check_catalogue(directory)
    for problem in problems:
        typer.echo(f"error: {problem}", err=True)
    if problems:
        typer.echo(f"error: not starting: the catalogue in {directory} has problems", err=True)
        raise typer.Exit(2)


def _refuse_unusable_executor(settings: Settings) -> None:
    """The Ray executor's needs, said before anything starts."""
    from qruntime.service.executor_choice import executor_problem

    problem = executor_problem(settings)
    if problem is not None:
        typer.echo(f"error: not starting: {problem}", err=True)
        raise typer.Exit(2)


def _configure_logging(level: str) -> None:
    """Our own and uvicorn's messages at ``level``; libraries (qiskit, alembic) only warn."""
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for name in ("qruntime", "uvicorn"):
        logging.getLogger(name).setLevel(level.upper())
