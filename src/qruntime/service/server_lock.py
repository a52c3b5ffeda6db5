"""One server per data directory (and per SQLite database), and its port, before anything runs.

A second ``qruntime serve`` on the same data directory or SQLite file must not mark the first
one's running jobs interrupted: it takes an exclusive ``flock`` on ``<data dir>/server.lock``
(and ``<database>.lock`` on SQLite) and binds its port before the app starts, and exits with a
message naming the running server's pid and URL when either is taken. Any other entry point
(the app run in-process, under another ASGI server) gets the same from ``Services.start``,
which takes the locks itself unless they were handed in. Replicas on PostgreSQL
each have their own data directory, so the lock never stands between them.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from qruntime.domain.errors import QRuntimeError

DATA_DIR_LOCK = "server.lock"
SQLITE_REPLICAS_HINT = (
    "SQLite takes one server; for several replicas use PostgreSQL "
    "(--database-url postgresql+psycopg://user@host/db), each replica with its own --data-dir."
)
PG_REPLICAS_HINT = "Replicas on one PostgreSQL database each need their own --data-dir."


class ServerAlreadyRunningError(QRuntimeError):
    """Another live server holds the data directory or the SQLite database."""


class PortUnavailableError(QRuntimeError):
    """The server's address cannot be bound (in use, or not an address of this machine)."""


@dataclass
class ServerLocks:
    """The held lock files; closing them (or the process ending) releases the locks."""

    fds: list[int] = field(default_factory=list)

    def describe(self, url: str) -> None:
        """Tell a second server who holds the locks: this process and the URL it serves."""
        record = {"pid": os.getpid(), "url": url, "since": datetime.now(UTC).isoformat()}
        for fd in self.fds:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)

    def release(self) -> None:
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds.clear()


def hold_server_locks(data_dir: Path, database_url: str, url: str) -> ServerLocks:
    """Lock the data directory, and the database file on SQLite; say who holds a taken one."""
    data_dir.mkdir(parents=True, exist_ok=True)
    locks = ServerLocks()
    sqlite_file = _sqlite_file(database_url)
    hint = SQLITE_REPLICAS_HINT if sqlite_file is not None else PG_REPLICAS_HINT
    wanted = [
        (
            data_dir / DATA_DIR_LOCK,
            f"the data directory {data_dir.resolve()}: stop it first, or give this one "
            "another --data-dir.",
        )
    ]
    if sqlite_file is not None:
        lock_file = sqlite_file.with_name(sqlite_file.name + ".lock")
        wanted.append((lock_file, f"the SQLite database {sqlite_file}."))
    try:
        for path, what in wanted:
            locks.fds.append(_lock(path, what, hint))
        locks.describe(url)
    except BaseException:
        locks.release()
        raise
    return locks


def bind_listener(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``, as uvicorn would make it, or a clear refusal."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family=family, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortUnavailableError(
                f"port {port} on {host} is already in use (by another qruntime server with "
                "another --data-dir, or another program); choose another with --port"
            ) from None
        raise PortUnavailableError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
    sock.set_inheritable(True)
    return sock


def _lock(path: Path, what: str, hint: str) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise ServerAlreadyRunningError(
            f"another qruntime server ({holder}) is already using {what} {hint}"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _holder(fd: int) -> str:
    """``pid N, URL`` from the lock file the running server wrote, as far as it can be read."""
    try:
        record = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {int(record['pid'])}, {record['url']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "pid unknown"


def _sqlite_file(database_url: str) -> Path | None:
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).resolve()
