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

import base64
import datetime as dt
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from qiskit import QuantumCircuit, qpy
from qiskit import quantum_info as qi
from qiskit.circuit import Gate, Parameter, ParameterExpression, ParameterVectorElement
from qiskit.primitives import (
    BitArray,
    DataBin,
    PrimitiveResult,
    PubResult,
    SamplerPubResult,
)
from qiskit.primitives.containers import BindingsArray, ObservablesArray
from qiskit.result import Result

from qruntime.domain.errors import SerializationError

__all__ = [
    "RuntimeDecoder",
    "RuntimeEncoder",
    "UnsupportedTypeError",
    "decode",
    "encode",
    "known_types",
]

TYPE_KEY = "__type__"
VALUE_KEY = "__value__"


class UnsupportedTypeError(SerializationError, TypeError):
    """The encoder cannot represent a value; a TypeError too, as ``json`` conventions expect."""


# --- small helpers ---------------------------------------------------------------------------


def _expect(value: Any, kinds: type | tuple[type, ...], what: str) -> Any:
    """Check a decoded ``__value__`` has the JSON shape a codec needs, before touching it."""
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise ValueError(f"expected {what}, got {type(value).__name__}")
    return value


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _b64decode(value: Any) -> bytes:
    return base64.b64decode(_expect(value, str, "a base64 string"), validate=True)


def _check_plain_dtype(dtype: np.dtype) -> None:
    """Object dtypes would need pickle to be stored, which this module never uses."""
    if dtype.hasobject:
        raise UnsupportedTypeError(
            "numpy object arrays are not supported (they need pickle); "
            "convert to a numeric, bool or string dtype first"
        )


# --- numpy -----------------------------------------------------------------------------------


def _encode_ndarray(arr: np.ndarray) -> str:
    _check_plain_dtype(arr.dtype)
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return _b64encode(buf.getvalue())


_NPY_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


def _decode_ndarray(value: Any) -> np.ndarray:
    """Read one .npy payload; the header is checked first so no size or dtype is taken on trust."""
    raw = _b64decode(value)
    buf = io.BytesIO(raw)
    version = np.lib.format.read_magic(buf)
    if version not in _NPY_HEADER_READERS:
        raise ValueError(f"unsupported .npy format version {version}")
    shape, _, dtype = _NPY_HEADER_READERS[version](buf)
    if dtype.hasobject:
        raise ValueError("object arrays are refused: reading them would need pickle")
    if math.prod(shape) * dtype.itemsize != len(raw) - buf.tell():
        raise ValueError(f"array data does not match header shape {shape} and dtype {dtype}")
    buf.seek(0)
    return np.lib.format.read_array(buf, allow_pickle=False)


def _encode_np_scalar(x: np.generic) -> str:
    return _encode_ndarray(np.asarray(x))


def _decode_np_scalar(value: Any) -> np.generic:
    arr = _decode_ndarray(value)
    if arr.ndim != 0:
        raise ValueError(f"expected a 0-d array, got shape {arr.shape}")
    return arr[()]


# --- builtins --------------------------------------------------------------------------------


def _decode_complex(value: Any) -> complex:
    parts = _expect(value, list, "[real, imag]")
    if len(parts) != 2:
        raise ValueError(f"expected [real, imag], got {len(parts)} items")
    real, imag = (_expect(p, (int, float), "a number") for p in parts)
    return complex(real, imag)


def _decode_set(value: Any) -> set:
    return set(_expect(value, list, "a list of items"))


def _decode_frozenset(value: Any) -> frozenset:
    return frozenset(_expect(value, list, "a list of items"))


# --- qiskit ----------------------------------------------------------------------------------


def _qpy_dump(circuit: QuantumCircuit) -> str:
    buf = io.BytesIO()
    qpy.dump(circuit, buf)
    return _b64encode(buf.getvalue())


def _qpy_load(value: Any) -> QuantumCircuit:
    circuits = qpy.load(io.BytesIO(_b64decode(value)))
    if len(circuits) != 1 or not isinstance(circuits[0], QuantumCircuit):
        raise ValueError(f"expected one QuantumCircuit in the QPY payload, got {len(circuits)}")
    return circuits[0]


def _encode_parameter(expr: ParameterExpression) -> str:
    """QPY has no public entry point for a bare expression, so it rides on a carrier gate."""
    carrier = QuantumCircuit(1)
    carrier.append(Gate("carrier", 1, [expr]), [0])
    return _qpy_dump(carrier)


def _decoder_for_parameter(cls: type) -> Callable[[Any], Any]:
    def decode_parameter(value: Any) -> Any:
        circuit = _qpy_load(value)
        if len(circuit.data) != 1 or len(circuit.data[0].operation.params) != 1:
            raise ValueError("expected one carrier gate with a single parameter")
        param = circuit.data[0].operation.params[0]
        if not isinstance(param, cls):
            raise ValueError(f"expected a {cls.__name__}, got {type(param).__name__}")
        return param

    return decode_parameter


def _decode_result(value: Any) -> Result:
    return Result.from_dict(_expect(value, dict, "a Result dict"))


def _settings_codec(cls: type) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """quantum_info classes rebuild from their ``.settings`` kwargs: ``cls(**o.settings) == o``."""

    def decode_settings(value: Any) -> Any:
        return cls(**_expect(value, dict, "a settings dict"))

    return (lambda o: dict(o.settings)), decode_settings


def _encode_sparse_pauli_op(op: qi.SparsePauliOp) -> dict:
    """Parameterised coefficients live in an object array, so send those as a plain list."""
    coeffs = op.coeffs
    return {"data": op.paulis, "coeffs": coeffs.tolist() if coeffs.dtype.hasobject else coeffs}


def _decode_spo(value: Any) -> qi.SparsePauliOp:
    settings = dict(_expect(value, dict, "a settings dict"))
    if isinstance(settings.get("coeffs"), list):
        settings["coeffs"] = np.array(settings["coeffs"], dtype=object)
    return qi.SparsePauliOp(**settings)


def _encode_sparse_obs(obs: qi.SparseObservable) -> dict:
    return {"num_qubits": obs.num_qubits, "terms": obs.to_sparse_list()}


def _decode_sparse_obs(value: Any) -> qi.SparseObservable:
    value = _expect(value, dict, "a dict with num_qubits and terms")
    terms = [tuple(_expect(t, list, "[label, indices, coeff]")) for t in value["terms"]]
    return qi.SparseObservable.from_sparse_list(terms, num_qubits=value["num_qubits"])


# --- qiskit primitives (V2) ------------------------------------------------------------------


def _fields(value: Any, what: str, keys: tuple[str, ...]) -> dict:
    """A dict with exactly ``keys``; names any that are missing or unexpected."""
    value = _expect(value, dict, f"a {what} dict")
    missing = [key for key in keys if key not in value]
    extra = sorted(str(key) for key in value.keys() - set(keys))
    if missing or extra:
        problems = [f"missing {missing}"] if missing else []
        problems += [f"unexpected {extra}"] if extra else []
        raise ValueError(f"{what} needs exactly the keys {list(keys)}: {', '.join(problems)}")
    return value


def _shape(value: Any) -> tuple[int, ...]:
    dims = _expect(value, list, "a shape list")
    for dim in dims:
        if _expect(dim, int, "an integer dimension") < 0:
            raise ValueError(f"shape dimensions must be >= 0, got {dims}")
    return tuple(dims)


def _object_array(items: list, shape: tuple[int, ...]) -> np.ndarray:
    """An object array of ``shape`` holding ``items`` in C order, without numpy unpacking them."""
    if len(items) != math.prod(shape):
        raise ValueError(f"{len(items)} items do not fill shape {shape}")
    arr = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        arr[i] = item
    return arr.reshape(shape)


def _encode_bit_array(bits: BitArray) -> dict:
    return {"array": bits.array, "num_bits": bits.num_bits}


def _decode_bit_array(value: Any) -> BitArray:
    value = _fields(value, "BitArray", ("array", "num_bits"))
    array = _expect(value["array"], np.ndarray, "an ndarray of packed bits")
    if _expect(value["num_bits"], int, "an integer num_bits") < 0:
        raise ValueError(f"num_bits must be >= 0, got {value['num_bits']}")
    return BitArray(array, value["num_bits"])


def _encode_data_bin(data: DataBin) -> dict:
    """Estimators put ``np.float64`` scalars here (0-d ``stds``); keep them numpy, not float."""
    fields = {
        name: {TYPE_KEY: "numpy_scalar", VALUE_KEY: _encode_np_scalar(value)}
        if isinstance(value, np.generic)
        else value
        for name, value in data.items()
    }
    return {"shape": list(data.shape), "fields": fields}


def _decode_data_bin(value: Any) -> DataBin:
    value = _fields(value, "DataBin", ("shape", "fields"))
    fields = _expect(value["fields"], dict, "a dict of fields")
    dunders = sorted(name for name in fields if name.startswith("__"))
    if dunders:
        raise ValueError(f"DataBin field names must not start with '__': {dunders}")
    return DataBin(shape=_shape(value["shape"]), **fields)


def _encode_pub_result(result: PubResult) -> dict:
    return {"data": result.data, "metadata": result.metadata}


def _decoder_for_pub_result(cls: type[PubResult]) -> Callable[[Any], PubResult]:
    def decode_pub_result(value: Any) -> PubResult:
        value = _fields(value, cls.__name__, ("data", "metadata"))
        data = _expect(value["data"], DataBin, "a DataBin as data")
        return cls(data, _expect(value["metadata"], dict, "a metadata dict"))

    return decode_pub_result


def _encode_primitive_result(result: PrimitiveResult) -> dict:
    pub_results = list(result)
    for item in pub_results:
        if not isinstance(item, PubResult):
            raise UnsupportedTypeError(
                f"PrimitiveResult can only be serialized with PubResult items, "
                f"got {type(item).__module__}.{type(item).__qualname__}"
            )
    return {"pub_results": pub_results, "metadata": result.metadata}


def _decode_primitive_result(value: Any) -> PrimitiveResult:
    value = _fields(value, "PrimitiveResult", ("pub_results", "metadata"))
    pub_results = _expect(value["pub_results"], list, "a list of pub results")
    for i, item in enumerate(pub_results):
        if not isinstance(item, PubResult):
            raise ValueError(f"pub_results[{i}] is a {type(item).__name__}, not a PubResult")
    return PrimitiveResult(pub_results, _expect(value["metadata"], dict, "a metadata dict"))


def _encode_bindings(bindings: BindingsArray) -> dict:
    """Values are keyed by parameter names, which is how BindingsArray stores them anyway."""
    data = [[list(names), values] for names, values in bindings.data.items()]
    return {"shape": list(bindings.shape), "data": data}


def _decode_bindings(value: Any) -> BindingsArray:
    value = _fields(value, "BindingsArray", ("shape", "data"))
    data = {}
    for entry in _expect(value["data"], list, "a list of [names, values] entries"):
        if len(_expect(entry, list, "a [names, values] entry")) != 2:
            raise ValueError(f"expected a [names, values] entry, got {len(entry)} items")
        names = tuple(
            _expect(name, str, "a parameter name")
            for name in _expect(entry[0], list, "a list of parameter names")
        )
        if names in data:
            raise ValueError(f"parameter names {list(names)} appear twice")
        data[names] = _expect(entry[1], np.ndarray, "an ndarray of parameter values")
    return BindingsArray(data, shape=_shape(value["shape"]))


def _encode_observables(obs: ObservablesArray) -> dict:
    flat = obs.sparse_observables_array().ravel().tolist()
    return {"num_qubits": obs.num_qubits, "shape": list(obs.shape), "observables": flat}


def _decode_observables(value: Any) -> ObservablesArray:
    value = _fields(value, "ObservablesArray", ("num_qubits", "shape", "observables"))
    num_qubits = _expect(value["num_qubits"], int, "an integer num_qubits")
    items = _expect(value["observables"], list, "a list of SparseObservables")
    for i, item in enumerate(items):
        if not isinstance(item, qi.SparseObservable):
            raise ValueError(f"observables[{i}] is a {type(item).__name__}, not a SparseObservable")
    return ObservablesArray(_object_array(items, _shape(value["shape"])), num_qubits=num_qubits)


# --- scipy.sparse ----------------------------------------------------------------------------

_SPARSE_CLASSES: dict[tuple[str, str], type] = {
    (fmt, kind): getattr(sp, f"{fmt}_{kind}")
    for fmt in ("bsr", "coo", "csc", "csr", "dia", "dok", "lil")
    for kind in ("array", "matrix")
}


def _encode_sparse(m: Any) -> dict:
    coo = m.tocoo()
    _check_plain_dtype(coo.dtype)
    return {
        "format": m.format,
        "kind": "array" if isinstance(m, sp.sparray) else "matrix",
        "shape": list(m.shape),
        "dtype": coo.dtype.str,
        "data": coo.data,
        "coords": list(coo.coords),
    }


def _decode_sparse(value: Any) -> Any:
    value = _expect(value, dict, "a sparse matrix dict")
    key = (value["format"], value["kind"])
    if key not in _SPARSE_CLASSES:
        raise ValueError(f"unsupported sparse format/kind {key}")
    dtype = np.dtype(_expect(value["dtype"], str, "a dtype string"))
    if dtype.kind not in "biufc":
        raise ValueError(f"sparse dtype must be numeric or bool, got {dtype}")
    coords = tuple(_expect(value["coords"], list, "a list of index arrays"))
    shape = tuple(_expect(value["shape"], list, "a shape list"))
    coo = sp.coo_array((value["data"], coords), shape=shape, dtype=dtype)
    overhead = _sparse_overhead(key[0], coo)
    limit = _SPARSE_OVERHEAD_FREE + _SPARSE_OVERHEAD_PER_ENTRY * coo.nnz
    if overhead > limit:
        raise ValueError(
            f"a {key[0]} matrix of shape {coo.shape} with {coo.nnz} entries needs {overhead} "
            f"index slots besides its values, over the limit of {limit}; send it as coo or dok"
        )
    return _SPARSE_CLASSES[key](coo)


#: Index slots (row or column pointers, per-row lists, diagonal cells) a decoded sparse matrix
#: may need besides its values: this many, plus a few per stored entry. Shape and coordinates
#: are a few bytes of payload and must not become gigabytes and minutes of work in the decoder.
_SPARSE_OVERHEAD_FREE = 2**22
_SPARSE_OVERHEAD_PER_ENTRY = 16
#: A ``lil`` row is a pair of Python lists, far heavier than one index.
_LIL_ROW_COST = 64


def _sparse_overhead(fmt: str, coo: Any) -> int:
    """What converting ``coo`` to ``fmt`` allocates beyond its entries (coo and dok: nothing)."""
    rows = coo.shape[0] if coo.ndim == 2 else 1
    cols = coo.shape[-1]
    if fmt in ("csr", "bsr"):
        return rows + 1
    if fmt == "csc":
        return cols + 1
    if fmt == "lil":
        return _LIL_ROW_COST * rows
    if fmt == "dia" and coo.ndim == 2 and coo.nnz:
        row, col = coo.coords
        return len(np.unique(col - row)) * (int(col.max()) + 1)
    return 0


# --- the table -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Codec:
    """One supported type: its wire name, how to recognise it, and how to cross the wire."""

    name: str
    matches: Callable[[Any], bool]
    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]


def _isa(*types: type) -> Callable[[Any], bool]:
    return lambda obj: isinstance(obj, types)


def _param_codec(name: str, cls: type) -> Codec:
    return Codec(name, _isa(cls), _encode_parameter, _decoder_for_parameter(cls))


def _qi_codec(cls: type) -> Codec:
    return Codec(cls.__name__, _isa(cls), *_settings_codec(cls))


def _pub_result_codec(cls: type[PubResult]) -> Codec:
    return Codec(cls.__name__, _isa(cls), _encode_pub_result, _decoder_for_pub_result(cls))


# Order matters where types overlap: the first codec whose ``matches`` holds encodes the value.
CODECS: tuple[Codec, ...] = (
    Codec("ndarray", _isa(np.ndarray), _encode_ndarray, _decode_ndarray),
    Codec("numpy_scalar", _isa(np.generic), _encode_np_scalar, _decode_np_scalar),  # before complex
    Codec("complex", _isa(complex), lambda c: [c.real, c.imag], _decode_complex),
    Codec("set", _isa(set), list, _decode_set),
    Codec("frozenset", _isa(frozenset), list, _decode_frozenset),
    Codec("datetime", _isa(dt.datetime), dt.datetime.isoformat, dt.datetime.fromisoformat),
    Codec("date", _isa(dt.date), dt.date.isoformat, dt.date.fromisoformat),
    Codec("QuantumCircuit", _isa(QuantumCircuit), _qpy_dump, _qpy_load),
    _param_codec("ParameterVectorElement", ParameterVectorElement),
    _param_codec("Parameter", Parameter),
    _param_codec("ParameterExpression", ParameterExpression),
    Codec("Result", _isa(Result), Result.to_dict, _decode_result),
    Codec("SparsePauliOp", _isa(qi.SparsePauliOp), _encode_sparse_pauli_op, _decode_spo),
    _qi_codec(qi.PauliList),
    _qi_codec(qi.Pauli),
    _qi_codec(qi.Statevector),
    _qi_codec(qi.DensityMatrix),
    _qi_codec(qi.Operator),
    Codec("SparseObservable", _isa(qi.SparseObservable), _encode_sparse_obs, _decode_sparse_obs),
    Codec("scipy_sparse", sp.issparse, _encode_sparse, _decode_sparse),
    Codec("BitArray", _isa(BitArray), _encode_bit_array, _decode_bit_array),
    Codec("DataBin", _isa(DataBin), _encode_data_bin, _decode_data_bin),
    _pub_result_codec(SamplerPubResult),  # a PubResult subclass, so it goes first
    _pub_result_codec(PubResult),
    Codec(
        "PrimitiveResult", _isa(PrimitiveResult), _encode_primitive_result, _decode_primitive_result
    ),
    Codec("BindingsArray", _isa(BindingsArray), _encode_bindings, _decode_bindings),
    Codec("ObservablesArray", _isa(ObservablesArray), _encode_observables, _decode_observables),
)

_BY_NAME: dict[str, Codec] = {codec.name: codec for codec in CODECS}


def known_types() -> list[str]:
    """The ``__type__`` names this module writes and accepts."""
    return list(_BY_NAME)


# --- json plumbing ---------------------------------------------------------------------------


def _find_codec(obj: Any) -> Codec | None:
    return next((codec for codec in CODECS if codec.matches(obj)), None)


def _envelop(obj: Any, codec: Codec) -> dict:
    return {TYPE_KEY: codec.name, VALUE_KEY: _claim_subclasses(codec.encode(obj))}


def _claim_subclasses(obj: Any, path: frozenset[int] = frozenset()) -> Any:
    """Wrap container subclasses a codec owns (``dok_array`` is a dict) before json sees them.

    ``json`` serialises dict/list/tuple subclasses itself without calling ``default()``, so this
    walk is the only chance to route them through the codec table.
    """
    if not isinstance(obj, dict | list | tuple):
        return obj
    if type(obj) not in (dict, list, tuple) and (codec := _find_codec(obj)) is not None:
        return _envelop(obj, codec)
    if id(obj) in path:
        raise ValueError("Circular reference detected")
    path = path | {id(obj)}
    if isinstance(obj, dict):
        return {key: _claim_subclasses(value, path) for key, value in obj.items()}
    return [_claim_subclasses(item, path) for item in obj]


class RuntimeEncoder(json.JSONEncoder):
    """``json.dumps(obj, cls=RuntimeEncoder)``; envelope contents are encoded recursively."""

    def iterencode(self, o: Any, _one_shot: bool = False) -> Any:
        return super().iterencode(_claim_subclasses(o), _one_shot)

    def default(self, o: Any) -> Any:
        codec = _find_codec(o)
        if codec is None:
            raise UnsupportedTypeError(
                f"cannot serialize object of type {type(o).__module__}.{type(o).__qualname__}"
            )
        return _envelop(o, codec)


def _decode_envelope(obj: dict) -> Any:
    """object_hook: runs bottom-up, so nested envelopes in ``__value__`` are already decoded."""
    if len(obj) != 2 or TYPE_KEY not in obj or VALUE_KEY not in obj:
        return obj
    name = obj[TYPE_KEY]
    codec = _BY_NAME.get(name) if isinstance(name, str) else None
    if codec is None:
        raise SerializationError(
            f"unknown __type__ {name!r}; known types: {', '.join(sorted(_BY_NAME))}"
        )
    try:
        return codec.decode(obj[VALUE_KEY])
    except SerializationError:
        raise
    except Exception as exc:
        raise SerializationError(
            f"malformed __value__ for __type__ {name!r}: {type(exc).__name__}: {exc}"
        ) from exc


class RuntimeDecoder(json.JSONDecoder):
    """``json.loads(text, cls=RuntimeDecoder)``; only names in the codec table are decoded."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["object_hook"] = _decode_envelope
        kwargs.pop("object_pairs_hook", None)  # it would silently bypass object_hook
        super().__init__(*args, **kwargs)

    def decode(self, s: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().decode(s, *args, **kwargs)
        except RecursionError:
            # The C scanner recurses once per array/object level and gives up at the stack limit.
            raise SerializationError("invalid JSON: arrays or objects nested too deeply") from None


def encode(obj: Any, **kwargs: Any) -> str:
    """Serialize ``obj`` to JSON text, raising UnsupportedTypeError for values it cannot hold."""
    return json.dumps(obj, cls=RuntimeEncoder, **kwargs)


def decode(text: str | bytes) -> Any:
    """Parse JSON text; any invalid or unsafe payload raises SerializationError."""
    try:
        return json.loads(text, cls=RuntimeDecoder)
    except json.JSONDecodeError as exc:
        raise SerializationError(f"invalid JSON: {exc}") from exc
    except UnicodeDecodeError as exc:  # bytes that are not UTF-8, UTF-16 or UTF-32
        message = f"invalid JSON: the bytes cannot be decoded as text: {exc}"
        raise SerializationError(message) from exc
