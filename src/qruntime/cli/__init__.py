"""The ``qruntime`` command line."""

from qruntime.cli.app import app

__all__ = ["app"]
