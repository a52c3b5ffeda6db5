"""The 2021 client's two websockets, views of the job's event stream (``follow_job``).

* ``/api/runtime/stream/jobs/{id}``: interim results. The token comes in the handshake's
  ``X-Access-Token`` header; the first message is an acknowledgement, then each interim result
  as a text message in the 2021 envelopes; the server closes (1000) once the job has finished.
* ``/api/ws/jobs/{id}/status/v/1``: a Qobj job's status. The client's first message carries
  the token (``{"type": "authentication", "data": token}``); then ``job-status`` messages; the
  server closes with 4002 after the final status.

A refused handshake is an HTTP answer with the API's error body (401, 404, 429), as on every
route. Both sockets count towards the caps on open streams, as the native stream does. A
reconnecting interim-result stream resumes after what its token's last one sent (in the
database: ``service/stream_resume.py``), so each interim result reaches the client once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import Response

from qruntime.api.errors import error_response
from qruntime.compat.common.envelopes import from_native
from qruntime.compat.ibmq2021.deps import ACCESS_TOKEN_HEADER, TAGS
from qruntime.compat.ibmq2021.wire import QOBJ_STATUS
from qruntime.domain.errors import NotAuthenticatedError, NotFoundError, NotTranslatableError
from qruntime.domain.job import JobStatus
from qruntime.lazy_module import lazy_module
from qruntime.service.container import Services
from qruntime.service.job_stream import StreamFinal, StreamItem, StreamStatus, follow_job
from qruntime.service.principal import Principal
from qruntime.service.stream_resume import StreamResume
from qruntime.service.stream_slots import TooManyStreamsError
from qruntime.storage import StoredInterim, StoredJob

# Qiskit's modules, imported when a request first needs them (qruntime/lazy_module.py).
dialect = lazy_module("qruntime.serialization.ibmq2021")

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
    token = websocket.headers.get(ACCESS_TOKEN_HEADER) or ""
    try:
        caller, job = await _visible_job(services, token, job_id, _address(websocket))
        release = services.streams.acquire(caller.user_id)  # the native streams' caps
    except (NotAuthenticatedError, NotFoundError, TooManyStreamsError) as exc:
        await websocket.send_denial_response(_refusal(exc))
        return
    try:
        await websocket.accept()
        await websocket.send_text(json.dumps({"type": "acknowledged", "job": job.id}))
        resume = StreamResume(services.db, token, job.id)
        since = await resume.resume_point()

        async def pump() -> None:
            recorded = sent = since
            try:
                async for batch in _follow(services, job.id, since=since):
                    for item in batch:
                        if isinstance(item, StoredInterim):
                            await websocket.send_text(_interim_text(item))
                            sent = item.seq
                    if sent != recorded:
                        await resume.delivered(sent)
                        recorded = sent
                await websocket.close(1000)
            finally:
                if sent != recorded:  # cut off mid-batch: what did go out still counts
                    await asyncio.shield(resume.delivered(sent))

        await _until_done_or_gone(websocket, pump)
    finally:
        release()


def _refusal(exc: Exception) -> Response:
    """A refused handshake: the API's error body with its status (401, 404, 429)."""
    if isinstance(exc, NotAuthenticatedError):
        return error_response(401, "not_authenticated", str(exc))
    if isinstance(exc, TooManyStreamsError):
        return error_response(429, "quota_exceeded", str(exc))
    return error_response(404, "not_found", str(exc))


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
        caller, job = await _visible_job(services, token, job_id, _address(websocket))
        release = services.streams.acquire(caller.user_id)
    except NotFoundError as exc:
        await websocket.close(JOB_NOT_FOUND, str(exc)[:120])
        return
    except (NotAuthenticatedError, TooManyStreamsError, ValueError, TimeoutError) as exc:
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

    try:
        await _until_done_or_gone(websocket, pump)
    finally:
        release()


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
) -> tuple[Principal, StoredJob]:
    def check() -> tuple[Principal, StoredJob]:
        if not token:
            raise NotAuthenticatedError(
                f"missing access token: send '{ACCESS_TOKEN_HEADER}: <token>' (QE_TOKEN)"
            )
        caller: Principal = services.users.authenticate(token, source=address)
        return caller, services.jobs.get(caller, job_id)

    return await asyncio.to_thread(check)


def _follow(services: Services, job_id: str, since: int = 0) -> AsyncIterator[list[StreamItem]]:
    ping = services.settings.stream_ping_seconds
    return follow_job(services.db, services.hub, job_id, since=since, ping_seconds=ping)


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
