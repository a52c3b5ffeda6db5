"""Handlers for Qiskit's V2 primitive containers: bit arrays, data bins, pub and primitive
results, bindings and observables arrays; every dict shape is checked before it is used."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from qiskit import quantum_info as qi
from qiskit.primitives import BitArray, DataBin, PrimitiveResult, PubResult
from qiskit.primitives.containers import BindingsArray, ObservablesArray

from qruntime.serialization.arrays import encode_np_scalar
from qruntime.serialization.envelope import TYPE_KEY, VALUE_KEY, UnsupportedTypeError, expect


def _fields(value: Any, what: str, keys: tuple[str, ...]) -> dict:
    """A dict with exactly ``keys``; names any that are missing or unexpected."""
    value = expect(value, dict, f"a {what} dict")
    missing = [key for key in keys if key not in value]
    extra = sorted(str(key) for key in value.keys() - set(keys))
    if missing or extra:
        problems = [f"missing {missing}"] if missing else []
        problems += [f"unexpected {extra}"] if extra else []
        raise ValueError(f"{what} needs exactly the keys {list(keys)}: {', '.join(problems)}")
    return value


def _shape(value: Any) -> tuple[int, ...]:
    dims = expect(value, list, "a shape list")
    for dim in dims:
        if expect(dim, int, "an integer dimension") < 0:
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


def encode_bit_array(bits: BitArray) -> dict:
    return {"array": bits.array, "num_bits": bits.num_bits}


def decode_bit_array(value: Any) -> BitArray:
    value = _fields(value, "BitArray", ("array", "num_bits"))
    array = expect(value["array"], np.ndarray, "an ndarray of packed bits")
    if expect(value["num_bits"], int, "an integer num_bits") < 0:
        raise ValueError(f"num_bits must be >= 0, got {value['num_bits']}")
    return BitArray(array, value["num_bits"])


def encode_data_bin(data: DataBin) -> dict:
    """Estimators put ``np.float64`` scalars here (0-d ``stds``); keep them numpy, not float."""
    fields = {
        name: {TYPE_KEY: "numpy_scalar", VALUE_KEY: encode_np_scalar(value)}
        if isinstance(value, np.generic)
        else value
        for name, value in data.items()
    }
    return {"shape": list(data.shape), "fields": fields}


def decode_data_bin(value: Any) -> DataBin:
    value = _fields(value, "DataBin", ("shape", "fields"))
    fields = expect(value["fields"], dict, "a dict of fields")
    dunders = sorted(name for name in fields if name.startswith("__"))
    if dunders:
        raise ValueError(f"DataBin field names must not start with '__': {dunders}")
    return DataBin(shape=_shape(value["shape"]), **fields)


def encode_pub_result(result: PubResult) -> dict:
    return {"data": result.data, "metadata": result.metadata}


def decoder_for_pub_result(cls: type[PubResult]) -> Callable[[Any], PubResult]:
    def decode_pub_result(value: Any) -> PubResult:
        value = _fields(value, cls.__name__, ("data", "metadata"))
        data = expect(value["data"], DataBin, "a DataBin as data")
        return cls(data, expect(value["metadata"], dict, "a metadata dict"))

    return decode_pub_result


def encode_primitive_result(result: PrimitiveResult) -> dict:
    pub_results = list(result)
    for item in pub_results:
        if not isinstance(item, PubResult):
            raise UnsupportedTypeError(
                f"PrimitiveResult can only be serialized with PubResult items, "
                f"got {type(item).__module__}.{type(item).__qualname__}"
            )
    return {"pub_results": pub_results, "metadata": result.metadata}


def decode_primitive_result(value: Any) -> PrimitiveResult:
    value = _fields(value, "PrimitiveResult", ("pub_results", "metadata"))
    pub_results = expect(value["pub_results"], list, "a list of pub results")
    for i, item in enumerate(pub_results):
        if not isinstance(item, PubResult):
            raise ValueError(f"pub_results[{i}] is a {type(item).__name__}, not a PubResult")
    return PrimitiveResult(pub_results, expect(value["metadata"], dict, "a metadata dict"))


def encode_bindings(bindings: BindingsArray) -> dict:
    """Values are keyed by parameter names, which is how BindingsArray stores them anyway."""
    data = [[list(names), values] for names, values in bindings.data.items()]
    return {"shape": list(bindings.shape), "data": data}


def decode_bindings(value: Any) -> BindingsArray:
    value = _fields(value, "BindingsArray", ("shape", "data"))
    data = {}
    for entry in expect(value["data"], list, "a list of [names, values] entries"):
        if len(expect(entry, list, "a [names, values] entry")) != 2:
            raise ValueError(f"expected a [names, values] entry, got {len(entry)} items")
        names = tuple(
            expect(name, str, "a parameter name")
            for name in expect(entry[0], list, "a list of parameter names")
        )
        if names in data:
            raise ValueError(f"parameter names {list(names)} appear twice")
        data[names] = expect(entry[1], np.ndarray, "an ndarray of parameter values")
    return BindingsArray(data, shape=_shape(value["shape"]))


def encode_observables(obs: ObservablesArray) -> dict:
    flat = obs.sparse_observables_array().ravel().tolist()
    return {"num_qubits": obs.num_qubits, "shape": list(obs.shape), "observables": flat}


def decode_observables(value: Any) -> ObservablesArray:
    value = _fields(value, "ObservablesArray", ("num_qubits", "shape", "observables"))
    num_qubits = expect(value["num_qubits"], int, "an integer num_qubits")
    items = expect(value["observables"], list, "a list of SparseObservables")
    for i, item in enumerate(items):
        if not isinstance(item, qi.SparseObservable):
            raise ValueError(f"observables[{i}] is a {type(item).__name__}, not a SparseObservable")
    return ObservablesArray(_object_array(items, _shape(value["shape"])), num_qubits=num_qubits)
