"""The URLs a server gives out: for clients on this machine, and the one other replicas and
the dashboard's Cluster page show, each with the scheme the server really speaks."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from qruntime.settings import Settings

TLS = {"tls_certfile": Path("cert.pem"), "tls_keyfile": Path("key.pem")}


@pytest.mark.parametrize(
    ("host", "tls", "public", "replica"),
    [
        ("127.0.0.1", False, "http://127.0.0.1:8800", "http://127.0.0.1:8800"),
        ("127.0.0.1", True, "https://127.0.0.1:8800", "https://127.0.0.1:8800"),
        ("0.0.0.0", False, "http://127.0.0.1:8800", f"http://{socket.gethostname()}:8800"),
        ("0.0.0.0", True, "https://127.0.0.1:8800", f"https://{socket.gethostname()}:8800"),
        ("::", True, "https://127.0.0.1:8800", f"https://{socket.gethostname()}:8800"),
    ],
)
def test_urls_carry_the_scheme_the_server_speaks(host, tls, public, replica) -> None:
    settings = Settings(host=host, port=8800, **(TLS if tls else {}))
    assert (settings.public_url, settings.replica_url) == (public, replica)
