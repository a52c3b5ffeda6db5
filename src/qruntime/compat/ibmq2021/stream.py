"""The 2021 client's two websockets, views of the job's event stream (``follow_job``).

* ``/api/runtime/stream/jobs/{id}``: interim results. The token comes in the handshake's
  ``X-Access-Token`` header; the first message is an acknowledgement, then each interim result
  as a text message in the 2021 envelopes; the server closes (1000) once the job has finished.
* ``/api/ws/jobs/{id}/status/v/1``: a Qobj job's status. The client's first message carries
  the token (``{"type": "authentication", "data": token}``); then ``job-status`` messages; the
  server closes with 4002 after the final status.

A refused handshake is an HTTP answer with the API's error body (401, 404), as on every route.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from qruntime.api.errors import error_response
from qruntime.compat.common.envelopes import from_native
from qruntime.compat.ibmq2021.deps import ACCESS_TOKEN_HEADER, TAGS
from qruntime.compat.ibmq2021.wire import QOBJ_STATUS
from qruntime.domain.errors import NotAuthenticatedError, NotFoundError, NotTranslatableError
from qruntime.domain.job import JobStatus
from qruntime.serialization import ibmq2021 as dialect
from qruntime.service.container import Services
from qruntime.service.job_stream import StreamFinal, StreamItem, StreamStatus, follow_job
from qruntime.service.principal import Principal
from qruntime.service.tokens import hash_token
from qruntime.storage import StoredInterim, StoredJob

router = APIRouter(tags=TAGS, strict_content_type=False)

#: Close codes of the 2021 job-status socket (``WebsocketClient`` of the client).
JOB_DONE = 4002
JOB_NOT_FOUND = 4003
POLICY_VIOLATION = 1008
#: Seconds a status socket waits for the client's authentication message.
AUTH_TIMEOUT = 30.0


@router.websocket("/runtime/stream/jobs/{job_id}")
async def interim_results(websocket: WebSocket, job_id: str) -> None:
    services: Services = websocket.app.state.services
    try:
        token = websocket.headers.get(ACCESS_TOKEN_HEADER)
        job = await _visible_job(services, token, job_id, _address(websocket))
    except (NotAuthenticatedError, NotFoundError) as exc:
        refusal = (
            error_response(401, "not_authenticated", str(exc))
            if isinstance(exc, NotAuthenticatedError)
            else error_response(404, "not_found", str(exc))
        )
        await websocket.send_denial_response(refusal)
        return
    await websocket.accept()
    await websocket.send_text(json.dumps({"type": "acknowledged", "job": job.id}))
    key = (hash_token(websocket.headers.get(ACCESS_TOKEN_HEADER) or ""), job.id)

    async def pump() -> None:
        async for batch in _follow(services, job.id, since=DELIVERED.resume_point(key)):
            for item in batch:
                if isinstance(item, StoredInterim):
                    await websocket.send_text(_interim_text(item))
                    DELIVERED.record(key, item.seq)
        await websocket.close(1000)

    await _until_done_or_gone(websocket, pump)


def _interim_text(interim: StoredInterim) -> str:
    """The interim result in the 2021 envelopes; one that cannot go is said so in its place."""
    try:
        return from_native(dialect, interim.data, what=f"interim result {interim.seq}")
    except NotTranslatableError as exc:
        return json.dumps(f"qruntime: {exc}")


@router.websocket("/ws/jobs/{job_id}/status/v/1")
async def job_status(websocket: WebSocket, job_id: str) -> None:
    services: Services = websocket.app.state.services
    await websocket.accept()
    try:
        message = await asyncio.wait_for(websocket.receive_text(), AUTH_TIMEOUT)
        token = _authentication_token(message)
        job = await _visible_job(services, token, job_id, _address(websocket))
    except NotFoundError as exc:
        await websocket.close(JOB_NOT_FOUND, str(exc)[:120])
        return
    except (NotAuthenticatedError, ValueError, TimeoutError) as exc:
        await websocket.send_text(json.dumps({"type": "error", "data": str(exc)}))
        await websocket.close(POLICY_VIOLATION, "authentication failed")
        return
    except WebSocketDisconnect:
        return
    await websocket.send_text(json.dumps({"type": "authenticated"}))

    async def pump() -> None:
        async for batch in _follow(services, job.id):
            for item in batch:
                if isinstance(item, StreamStatus | StreamFinal):
                    word = QOBJ_STATUS.by_status[JobStatus(item.status)]
                    await websocket.send_text(
                        json.dumps({"type": "job-status", "data": {"id": job.id, "status": word}})
                    )
        await websocket.close(JOB_DONE)

    await _until_done_or_gone(websocket, pump)


def _authentication_token(message: str) -> str:
    try:
        parsed = json.loads(message)
    except ValueError:
        raise ValueError("the first message must be the authentication message") from None
    if not isinstance(parsed, dict) or parsed.get("type") != "authentication":
        raise ValueError('the first message must be {"type": "authentication", "data": token}')
    token = parsed.get("data")
    if not isinstance(token, str) or not token:
        raise NotAuthenticatedError("the authentication message carries no token")
    return token


def _address(websocket: WebSocket) -> str | None:
    return websocket.client.host if websocket.client is not None else None


async def _visible_job(
    services: Services, token: str | None, job_id: str, address: str | None
) -> StoredJob:
    def check() -> StoredJob:
        if not token:
            raise NotAuthenticatedError(
                f"missing access token: send '{ACCESS_TOKEN_HEADER}: <token>' (QE_TOKEN)"
            )
        caller: Principal = services.users.authenticate(token, source=address)
        return services.jobs.get(caller, job_id)

    return await asyncio.to_thread(check)


def _follow(services: Services, job_id: str, since: int = 0) -> AsyncIterator[list[StreamItem]]:
    ping = services.settings.stream_ping_seconds
    return follow_job(services.db, services.hub, job_id, since=since, ping_seconds=ping)


class Delivered:
    """What each recent stream sent, by (token hash, job), for a minute: a client that
    reconnects (websocket-client 1.9 does after every normal close) resumes after it instead
    of getting every interim result again. Per server process; a miss only means a replay."""

    TTL_SECONDS = 60.0
    MAX_ENTRIES = 10_000

    def __init__(self) -> None:
        self._sent: OrderedDict[tuple[str, str], tuple[int, float]] = OrderedDict()

    def resume_point(self, key: tuple[str, str]) -> int:
        found = self._sent.get(key)
        if found is None or found[1] < time.monotonic():
            return 0
        return found[0]

    def record(self, key: tuple[str, str], seq: int) -> None:
        self._sent[key] = (seq, time.monotonic() + self.TTL_SECONDS)
        self._sent.move_to_end(key)
        while len(self._sent) > self.MAX_ENTRIES:
            self._sent.popitem(last=False)


DELIVERED = Delivered()


async def _until_done_or_gone(websocket: WebSocket, pump: Callable[[], Awaitable[None]]) -> None:
    """Run ``pump`` until it ends or the client goes away (the client sends nothing more)."""

    async def gone() -> None:
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                await websocket.receive_text()

    tasks = [asyncio.ensure_future(pump()), asyncio.ensure_future(gone())]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            error = None if task.cancelled() else task.exception()
            # A client gone mid-send shows as a disconnect or a send on a closed socket.
            if error is not None and not isinstance(error, WebSocketDisconnect | RuntimeError):
                raise error
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*tasks, return_exceptions=True)
