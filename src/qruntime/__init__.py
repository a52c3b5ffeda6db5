"""qruntime: an open, self-hostable runtime for quantum programs."""

__version__ = "0.1.0"
