"""Resuming a client's websocket stream of interim results where its last connection stopped.

The 2021 client reconnects, with the same token and URL, whenever its stream ends other than
by its own close (websocket-client 1.9 does even after a normal close). The point it got to
lives in the database, so the reconnect may reach any replica, or a restarted server, and
still gets each interim result once. A new stream within ``TTL`` of the last one is taken for
a reconnect; after that a stream starts from the first interim result again.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from qruntime.service.tokens import hash_token
from qruntime.storage import Database
from qruntime.storage.stream_deliveries import delivered_seq, record_delivered

TTL = timedelta(seconds=120)


class StreamResume:
    """One stream's key (its token's hash and the job) and how far it got."""

    def __init__(self, db: Database, token: str, job_id: str):
        self._db = db
        self._key = (hash_token(token), job_id)

    async def resume_point(self) -> int:
        def read() -> int:
            with self._db.session() as session:
                return delivered_seq(session, *self._key)

        return await asyncio.to_thread(read)

    async def delivered(self, seq: int) -> None:
        def write() -> None:
            with self._db.session() as session:
                record_delivered(session, *self._key, seq, TTL)

        await asyncio.to_thread(write)
