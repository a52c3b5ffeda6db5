"""Several replicas on one host: 1 and then 2 ``qruntime serve`` on one fresh PostgreSQL
database each time, the same clients spread over them, every result checked."""

from __future__ import annotations

from contextlib import ExitStack

from common import Row
from server import bench_server
from server_jobs import throughput
from statements import fresh_postgres


def jobs_per_second(replicas: int, clients: int, jobs_per_client: int) -> float:
    """Trivial jobs/s with ``replicas`` servers on one new database; client i uses replica i % n."""
    with fresh_postgres() as url, ExitStack() as stack:
        servers = [stack.enter_context(bench_server(database_url=url)) for _ in range(replicas)]
        token = next(s.token for s in servers if s.token)
        servers = [type(s)(s.url, token, s.pid, s.directory) for s in servers]
        throughput(servers, clients, 1)  # warm-up: every replica's caches and pool
        rate, _total = throughput(servers, clients, jobs_per_client)
        return rate


def rows(clients: int = 16, jobs_per_client: int = 25) -> list[Row]:
    one = jobs_per_second(1, clients, jobs_per_client)
    two = jobs_per_second(2, clients, jobs_per_client)
    total = clients * jobs_per_client
    what = f"{clients} clients, {total} trivial jobs, all results checked"
    return [
        Row("replicas on one host", f"PostgreSQL, 1 replica, {what}", f"{one:.1f} jobs/s"),
        Row(
            "replicas on one host",
            f"PostgreSQL, 2 replicas on one database, clients spread over them, {what}",
            f"{two:.1f} jobs/s ({two / one:.2f}x of 1 replica)",
            "",
            "1 replica, same run",
        ),
    ]
