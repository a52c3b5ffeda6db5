"""The 2021 dialect: the envelopes of qiskit-ibmq-provider 0.20's RuntimeEncoder/RuntimeDecoder.

It differs from qruntime's own table: ``ndarray`` and ``QuantumCircuit`` payloads are
zlib-compressed; ``quantum_info`` objects are ``settings`` envelopes that name their module and
class; scipy matrices are ``.npz`` files (``spmatrix``); dates and datetimes share one
``datetime`` type; an ``Instruction`` is a one-instruction circuit.

Reading goes through the allow-list below (a ``settings`` envelope can only name the six
``quantum_info`` classes of the table; nothing a payload names is imported), and every
decompression is bounded by one byte budget per payload. Writing refuses, with an error naming
the type, what that client cannot read: circuits and parameters (today's Qiskit writes QPY 13
and later, qiskit-terra 0.46 reads QPY up to 10) and the V2 primitive containers it predates.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
from qiskit import QuantumCircuit
from qiskit import quantum_info as qi
from qiskit.circuit import ParameterExpression
from qiskit.result import Result

from qruntime.domain.errors import SerializationError, TooLargeError
from qruntime.serialization.arrays import check_plain_dtype, read_npy
from qruntime.serialization.envelope import (
    TYPE_KEY,
    VALUE_KEY,
    Codec,
    CodecTable,
    UnsupportedTypeError,
    b64decode,
    b64encode,
    expect,
    isa,
    loads_with,
    type_name,
)
from qruntime.serialization.handlers import qpy_load

__all__ = ["CLIENT", "dumps", "loads"]

#: The client whose envelopes these are, as error messages name it.
CLIENT = "qiskit-ibmq-provider 0.20"
MODULE_KEY = "__module__"
CLASS_KEY = "__class__"

#: ``settings`` envelopes: class name -> (the module qiskit-terra 0.46 keeps it in, the class).
SETTINGS_CLASSES: dict[str, tuple[str, type]] = {
    "SparsePauliOp": ("qiskit.quantum_info.operators.symplectic.sparse_pauli_op", qi.SparsePauliOp),
    "PauliList": ("qiskit.quantum_info.operators.symplectic.pauli_list", qi.PauliList),
    "Pauli": ("qiskit.quantum_info.operators.symplectic.pauli", qi.Pauli),
    "Statevector": ("qiskit.quantum_info.states.statevector", qi.Statevector),
    "DensityMatrix": ("qiskit.quantum_info.states.densitymatrix", qi.DensityMatrix),
    "Operator": ("qiskit.quantum_info.operators.operator", qi.Operator),
}
#: Members a scipy ``.npz`` may hold (scipy.sparse.save_npz writes no others).
_NPZ_MEMBERS = frozenset(
    {"format", "shape", "data", "indices", "indptr", "offsets", "row", "col", "coords", "_is_array"}
)

_QPY_TOO_NEW = (
    f"{CLIENT} reads circuits as QPY up to version 10 (qiskit-terra 0.46) and today's Qiskit "
    "writes QPY 13 and later"
)
#: Types qruntime carries that this client cannot read back, and why.
_NOT_FOR_THIS_CLIENT: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (QuantumCircuit, _QPY_TOO_NEW),
    (ParameterExpression, _QPY_TOO_NEW),
    (qi.SparseObservable, "it has no envelope for SparseObservable"),
)


class Budget:
    """Bytes one payload may still inflate to: compressed envelopes cannot explode in memory."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.left = max_bytes

    def spend(self, size: int) -> None:
        if size > self.left:
            raise TooLargeError(
                f"the payload's compressed values inflate to more than {self.max_bytes} bytes, "
                "the limit of job inputs (QRUNTIME_MAX_INPUTS_BYTES)"
            )
        self.left -= size

    def inflate(self, data: bytes) -> bytes:
        inflater = zlib.decompressobj()
        out = inflater.decompress(data, self.left + 1)
        self.spend(len(out))
        if inflater.unconsumed_tail or not inflater.eof:
            raise ValueError("the zlib stream is truncated or has data after its end")
        return out


# --- reading ---------------------------------------------------------------------------------


def _read_datetime(value: Any) -> dt.datetime:
    return dt.datetime.fromisoformat(expect(value, str, "an ISO 8601 date"))


def _read_complex(value: Any) -> complex:
    parts = expect(value, list, "[real, imag]")
    if len(parts) != 2:
        raise ValueError(f"expected [real, imag], got {len(parts)} items")
    real, imag = (expect(p, (int, float), "a number") for p in parts)
    return complex(real, imag)


def _reader_of_ndarray(budget: Budget) -> Callable[[Any], np.ndarray]:
    def read(value: Any) -> np.ndarray:
        if isinstance(value, list):  # the client's form for object arrays: a nested list
            array = np.array(value)
            check_plain_dtype(array.dtype)
            return array
        return read_npy(budget.inflate(b64decode(value)))

    return read


def _reader_of_circuit(budget: Budget) -> Callable[[Any], QuantumCircuit]:
    def read(value: Any) -> QuantumCircuit:
        return qpy_load(b64encode(budget.inflate(b64decode(value))))

    return read


def _refuse_instruction(value: Any) -> Any:
    raise SerializationError(
        "__type__ 'Instruction' (a lone gate or instruction) cannot be passed on: qruntime's "
        "envelopes carry whole circuits; put the instruction in a QuantumCircuit"
    )


def _refuse_expression(value: Any) -> Any:
    raise SerializationError(
        "__type__ 'ParameterExpression' cannot be passed on: its 2021 encoding is a private QPY "
        "fragment that today's Qiskit does not read; bind the parameters before sending"
    )


def _read_result(value: Any) -> Result:
    return Result.from_dict(expect(value, dict, "a Result dict"))


def _int_keys(value: Any) -> Any:
    """The client marks dicts whose keys were ints with ``__int_keys__`` (in settings only)."""
    if not isinstance(value, dict):
        return value
    flagged = value.pop("__int_keys__", False) is True
    out = {}
    for key, item in value.items():
        if flagged and isinstance(key, str) and key.lstrip("-").isdigit():
            key = int(key)
        out[key] = _int_keys(item)
    return out


def _read_settings(module: Any, class_name: Any, value: Any) -> Any:
    known = SETTINGS_CLASSES.get(class_name) if isinstance(class_name, str) else None
    if known is None or module != known[0]:
        raise SerializationError(
            f"settings envelope of {module}.{class_name} is not accepted; the allowed "
            f"classes are {', '.join(SETTINGS_CLASSES)} from qiskit.quantum_info"
        )
    return known[1](**_int_keys(expect(value, dict, "a settings dict")))


def _reader_of_sparse(budget: Budget) -> Callable[[Any], Any]:
    def read(value: Any) -> Any:
        raw = b64decode(value)
        budget.spend(len(raw))
        arrays = {}
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            for info in archive.infolist():
                name = info.filename.removesuffix(".npy")
                if name not in _NPZ_MEMBERS or name in arrays:
                    raise ValueError(f"unexpected member {info.filename!r} in the .npz payload")
                budget.spend(info.file_size)
                arrays[name] = read_npy(archive.read(info))
        return _sparse_from_members(arrays)

    return read


def _sparse_from_members(arrays: dict[str, np.ndarray]) -> Any:
    fmt = arrays["format"].item()
    fmt = fmt.decode("ascii") if isinstance(fmt, bytes) else str(fmt)
    shape = tuple(int(n) for n in arrays["shape"])
    kind = "array" if "_is_array" in arrays and bool(arrays["_is_array"]) else "matrix"
    data = arrays["data"]
    if fmt in ("csr", "csc", "bsr"):
        parts: Any = (data, arrays["indices"], arrays["indptr"])
    elif fmt == "dia":
        parts = (data, arrays["offsets"])
    elif fmt == "coo":
        coords = (arrays["row"], arrays["col"]) if "row" in arrays else tuple(arrays["coords"])
        parts = (data, coords)
    else:
        raise ValueError(f"unsupported sparse format {fmt!r}")
    return getattr(sp, f"{fmt}_{kind}")(parts, shape=shape)


def _identity(value: Any) -> Any:
    return value


# --- writing ---------------------------------------------------------------------------------


def _write_ndarray(array: np.ndarray) -> Any:
    if array.dtype.hasobject:
        return array.tolist()  # the client's own form for object arrays; items encode themselves
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return b64encode(zlib.compress(buffer.getvalue()))


def _write_sparse(matrix: Any) -> str:
    if matrix.format not in ("csr", "csc", "bsr", "dia", "coo"):
        matrix = matrix.tocsr()
    check_plain_dtype(matrix.dtype)
    buffer = io.BytesIO()
    sp.save_npz(buffer, matrix)
    return b64encode(buffer.getvalue())


def _settings_of(obj: Any) -> dict:
    return dict(obj.settings)


def _is_settings_object(obj: Any) -> bool:
    return type(obj).__name__ in SETTINGS_CLASSES and isinstance(
        obj, SETTINGS_CLASSES[type(obj).__name__][1]
    )


# --- the table -------------------------------------------------------------------------------


class Table2021(CodecTable):
    """The 2021 codecs for one payload (the byte budget is the payload's)."""

    def __init__(self, max_bytes: int):
        budget = Budget(max_bytes)
        super().__init__(
            (
                Codec("datetime", isa(dt.date), dt.date.isoformat, _read_datetime),
                Codec("complex", isa(complex), lambda c: [c.real, c.imag], _read_complex),
                Codec("ndarray", isa(np.ndarray), _write_ndarray, _reader_of_ndarray(budget)),
                Codec("set", isa(set, frozenset), list, lambda v: set(expect(v, list, "a list"))),
                Codec("QuantumCircuit", lambda o: False, _identity, _reader_of_circuit(budget)),
                Codec("Instruction", lambda o: False, _identity, _refuse_instruction),
                Codec("ParameterExpression", lambda o: False, _identity, _refuse_expression),
                Codec("Result", isa(Result), Result.to_dict, _read_result),
                Codec("settings", _is_settings_object, _settings_of, _identity),
                Codec("spmatrix", sp.issparse, _write_sparse, _reader_of_sparse(budget)),
                Codec("to_json", lambda o: False, _identity, _identity),
            )
        )

    def default(self, obj: Any) -> Any:
        if isinstance(obj, np.generic):  # the 2021 format has no numpy scalars: plain values
            return obj.item()
        return super().default(obj)

    def unsupported(self, obj: Any) -> UnsupportedTypeError:
        for types, why in _NOT_FOR_THIS_CLIENT:
            if isinstance(obj, types):
                return UnsupportedTypeError(f"a {type_name(obj)} cannot be sent to {CLIENT}: {why}")
        return UnsupportedTypeError(
            f"a {type_name(obj)} cannot be sent to {CLIENT}: it has no envelope for that type"
        )

    def envelop(self, obj: Any, codec: Codec) -> dict:
        if codec.name != "settings":
            return super().envelop(obj, codec)
        module, _ = SETTINGS_CLASSES[type(obj).__name__]
        return {
            TYPE_KEY: "settings",
            MODULE_KEY: module,
            CLASS_KEY: type(obj).__name__,
            VALUE_KEY: self.claim_subclasses(codec.encode(obj)),
        }

    def envelope_of(self, obj: dict) -> tuple[Any, Any] | None:
        if obj.get(TYPE_KEY) == "settings" and set(obj) == {
            TYPE_KEY,
            VALUE_KEY,
            MODULE_KEY,
            CLASS_KEY,
        }:
            return "settings", (obj[MODULE_KEY], obj[CLASS_KEY], obj[VALUE_KEY])
        return super().envelope_of(obj)

    def decode_envelope(self, obj: dict) -> Any:
        found = self.envelope_of(obj)
        if found is not None and found[0] == "settings":
            if not isinstance(found[1], tuple):
                raise SerializationError(
                    "a settings envelope needs __module__ and __class__ besides __type__ and "
                    "__value__"
                )
            try:
                return _read_settings(*found[1])
            except SerializationError:
                raise
            except Exception as exc:
                raise SerializationError(
                    f"malformed __value__ for __type__ 'settings': {type(exc).__name__}: {exc}"
                ) from exc
        return super().decode_envelope(obj)


def loads(text: str | bytes, *, max_bytes: int) -> Any:
    """Parse a 2021 payload; compressed values may inflate to ``max_bytes`` in all."""
    table = Table2021(max_bytes)
    return loads_with(json.JSONDecoder(object_hook=table.decode_envelope), text)


class _Encoder2021(json.JSONEncoder):
    table = Table2021(0)  # writing inflates nothing, so the budget is never used

    def iterencode(self, o: Any, _one_shot: bool = False) -> Any:
        return super().iterencode(self.table.claim_subclasses(o), _one_shot)

    def default(self, o: Any) -> Any:
        return self.table.default(o)


def dumps(obj: Any) -> str:
    """Write ``obj`` as that client's RuntimeDecoder reads it; UnsupportedTypeError if it can't."""
    try:
        return json.dumps(obj, cls=_Encoder2021, allow_nan=True)
    except UnsupportedTypeError:
        raise
    except (TypeError, ValueError) as exc:
        raise UnsupportedTypeError(f"cannot be sent to {CLIENT}: {exc}") from exc
