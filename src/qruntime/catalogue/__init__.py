"""The public program catalogue: ``runtime/<module>.py`` + ``.json``, its checks and publishing."""

from qruntime.catalogue.entries import CatalogueProgram, load_catalogue

__all__ = ["CatalogueProgram", "load_catalogue"]
