"""``load_account()``: the 2021 ``IBMQ.load_account()`` entry point, so the seed quickstart runs."""

from __future__ import annotations

from qruntime.client.service import BackendInfo, RuntimeService

__all__ = ["Provider", "load_account"]


class Provider:
    """What ``load_account()`` returns: the saved server, with its programs at ``.runtime``."""

    def __init__(self, runtime: RuntimeService) -> None:
        self.runtime = runtime

    def backends(self) -> list[BackendInfo]:
        return self.runtime.backends()

    def close(self) -> None:
        self.runtime.close()

    def __enter__(self) -> Provider:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Provider({self.runtime.url!r})>"


def load_account(name: str | None = None) -> Provider:
    """Connect with a saved account (the default one unless ``name``), or QRUNTIME_URL/TOKEN."""
    return Provider(RuntimeService(name=name))
