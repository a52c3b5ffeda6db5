"""The zygote's control channel: JSON datagrams on a SOCK_SEQPACKET pair, pipe ends attached.

The supervisor sends ``fork`` orders with the new worker's four pipe ends; the zygote answers
``ready`` once, then ``forked`` (or ``fork_failed``) per order and ``exited`` per reaped worker.
"""

from __future__ import annotations

import json
import socket
from typing import Any

#: Largest control message; orders carry a sandbox plan and an environment, nothing bigger.
MAX_MESSAGE_BYTES = 1 << 20
#: A fork order carries the worker's job, event, stdout and stderr pipe ends, in that order.
FDS_PER_WORKER = 4


def control_pair() -> tuple[socket.socket, socket.socket]:
    """(supervisor end, zygote end); only the zygote end may be inherited."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    theirs.set_inheritable(True)
    return ours, theirs


def send_message(sock: socket.socket, message: dict[str, Any], fds: list[int] = ()) -> None:
    socket.send_fds(sock, [json.dumps(message).encode()], list(fds))


def receive_message(
    sock: socket.socket, max_fds: int = 0
) -> tuple[dict[str, Any] | None, list[int]]:
    """The next message and the descriptors that came with it; None once the peer has gone."""
    data, fds, _flags, _address = socket.recv_fds(sock, MAX_MESSAGE_BYTES, max_fds)
    if not data:
        return None, fds
    return json.loads(data), fds
