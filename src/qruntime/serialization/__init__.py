"""JSON encoding of runtime values (numpy, qiskit, scipy) that is safe to decode from strangers.

Values JSON cannot hold become envelopes ``{"__type__": name, "__value__": value}``. Both
directions go through one fixed table of codecs: the decoder maps ``__type__`` only through that
table, never imports a module named by a payload, and never unpickles (numpy payloads are read
with ``allow_pickle=False``).

Known limitations:

* ``np.float64`` subclasses ``float`` (and ``np.str_`` subclasses ``str``), so ``json`` writes it
  as a plain number without asking the encoder; it decodes as a Python ``float``.
* Tuples become lists (``json`` handles them itself); a ``set`` holding tuples therefore cannot
  be decoded (lists are unhashable) and raises :class:`SerializationError`.
* Aware datetimes keep their UTC offset, not their zone: a ``ZoneInfo`` comes back as a fixed
  ``datetime.timezone``.
* QPY drops complex coefficients inside parameter expressions (``θ*1j`` decodes as ``θ``).
* A plain dict that has exactly the keys ``__type__`` and ``__value__`` is read as an envelope.
* Subclasses of ``PubResult`` other than ``SamplerPubResult`` decode as a plain ``PubResult``,
  and subclasses of ``DataBin`` as a plain ``DataBin``. A ``PrimitiveResult`` is only encoded
  when every item is a ``PubResult``. ``DataBin`` field names starting with ``__`` are refused.
* A csr, csc, bsr, lil or dia matrix whose shape needs far more index space (row pointers,
  row lists, diagonals) than its entries do, beyond about four million slots, is refused on
  decoding; such a matrix travels as coo or dok.
"""

from __future__ import annotations

import json
from typing import Any

from qruntime.domain.errors import SerializationError
from qruntime.serialization.envelope import (
    CodecTable,
    EnvelopeDecoder,
    EnvelopeEncoder,
    LazyCodecTable,
    UnsupportedTypeError,
    loads_with,
)

__all__ = [
    "CODECS",
    "RuntimeDecoder",
    "RuntimeEncoder",
    "SerializationError",
    "UnsupportedTypeError",
    "decode",
    "encode",
    "known_types",
]


def _native_table() -> CodecTable:
    from qruntime.serialization.handlers import NATIVE_TABLE

    return NATIVE_TABLE


#: qruntime's own codecs; loaded (with qiskit) the first time a value needs one.
NATIVE_TABLE = LazyCodecTable(_native_table)


def __getattr__(name: str) -> Any:
    if name == "CODECS":  # qruntime's own codecs, in the order they are tried
        return NATIVE_TABLE.codecs
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def known_types() -> list[str]:
    """The ``__type__`` names this module writes and accepts."""
    return NATIVE_TABLE.names()


class RuntimeEncoder(EnvelopeEncoder):
    """``json.dumps(obj, cls=RuntimeEncoder)``; envelope contents are encoded recursively."""

    table = NATIVE_TABLE


class RuntimeDecoder(EnvelopeDecoder):
    """``json.loads(text, cls=RuntimeDecoder)``; only names in the codec table are decoded."""

    table = NATIVE_TABLE


def encode(obj: Any, **kwargs: Any) -> str:
    """Serialize ``obj`` to JSON text, raising UnsupportedTypeError for values it cannot hold."""
    return json.dumps(obj, cls=RuntimeEncoder, **kwargs)


def decode(text: str | bytes) -> Any:
    """Parse JSON text; any invalid or unsafe payload raises SerializationError."""
    return loads_with(RuntimeDecoder, text)
