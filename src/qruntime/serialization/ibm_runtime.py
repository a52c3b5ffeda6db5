"""Today's dialect: the envelopes of qiskit-ibm-runtime's ``RuntimeEncoder``/``RuntimeDecoder``.

They are the 2021 envelopes (zlib-compressed ``ndarray`` and QPY ``QuantumCircuit`` payloads,
``settings`` envelopes of six ``quantum_info`` classes, ``.npz`` sparse matrices) plus the V2
primitive containers in the client's own shapes: ``BindingsArray`` keyed by the JSON text of
its parameter names, ``ObservablesArray`` as nested lists of ``{pauli: coeff}``, and the
results (``BitArray``, ``DataBin``, ``SamplerPubResult``, ``PubResult``, ``PrimitiveResult``)
the client decodes. Reading goes through the same allow-list and byte budget as the 2021
dialect; nothing a payload names is imported. Circuits go out as today's QPY.
"""

from __future__ import annotations

import io
import json
import zlib
from typing import Any

import numpy as np
from qiskit import QuantumCircuit, qpy
from qiskit.primitives import BitArray, DataBin, PrimitiveResult, PubResult
from qiskit.primitives.containers import BindingsArray, ObservablesArray, SamplerPubResult

from qruntime.serialization.envelope import (
    Codec,
    UnsupportedTypeError,
    b64encode,
    expect,
    isa,
    loads_with,
    type_name,
)
from qruntime.serialization.ibmq2021 import Table2021

__all__ = ["CLIENT", "dumps", "loads"]

CLIENT = "qiskit-ibm-runtime"


def _never(obj: Any) -> bool:
    return False


def _read_observables(value: Any) -> ObservablesArray:
    return ObservablesArray(expect(value, (list, dict, str), "a list of {pauli: coeff} dicts"))


def _read_bindings(value: Any) -> BindingsArray:
    value = expect(value, dict, "a BindingsArray dict")
    unexpected = sorted(set(value) - {"shape", "data"})
    if unexpected:
        raise ValueError(f"BindingsArray has unexpected keys {unexpected}")
    shape = value.get("shape")
    if shape is not None:
        dims = expect(shape, list, "a shape")
        shape = tuple(expect(dim, int, "an integer dimension") for dim in dims)
    data: dict[tuple[str, ...], np.ndarray] = {}
    raw = value.get("data")
    for key, values in expect(raw if raw is not None else {}, dict, "a dict of values").items():
        names = json.loads(key)
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"BindingsArray keys are JSON lists of parameter names, got {key!r}")
        data[tuple(names)] = np.asarray(expect(values, (np.ndarray, list), "parameter values"))
    return BindingsArray(data or None, shape=shape)


def _write_circuit(circuit: QuantumCircuit) -> str:
    buffer = io.BytesIO()
    qpy.dump(circuit, buffer)
    return b64encode(zlib.compress(buffer.getvalue()))


def _write_bit_array(bits: BitArray) -> dict:
    return {"array": bits.array, "num_bits": bits.num_bits}


def _write_data_bin(data: DataBin) -> dict:
    return {"field_names": list(data), "shape": list(data.shape), "fields": dict(data.items())}


def _write_pub_result(result: PubResult) -> dict:
    return {"data": result.data, "metadata": result.metadata}


def _write_primitive_result(result: PrimitiveResult) -> dict:
    return {"pub_results": list(result), "metadata": result.metadata}


class TableToday(Table2021):
    """The 2021 codecs, then the primitives' and today's circuits (the first match encodes)."""

    def __init__(self, max_bytes: int):
        super().__init__(max_bytes)
        old = {codec.name: codec for codec in self.codecs}
        circuit = old["QuantumCircuit"]
        today = (
            Codec("QuantumCircuit", isa(QuantumCircuit), _write_circuit, circuit.decode),
            Codec("ObservablesArray", _never, _never, _read_observables),
            Codec("BindingsArray", _never, _never, _read_bindings),
            Codec("BitArray", isa(BitArray), _write_bit_array, _never),
            Codec("DataBin", isa(DataBin), _write_data_bin, _never),
            Codec("SamplerPubResult", isa(SamplerPubResult), _write_pub_result, _never),
            Codec("PubResult", isa(PubResult), _write_pub_result, _never),
            Codec("PrimitiveResult", isa(PrimitiveResult), _write_primitive_result, _never),
        )
        kept = [codec for codec in self.codecs if codec.name != "QuantumCircuit"]
        self.codecs = (*today, *kept)
        self.by_name = {codec.name: codec for codec in self.codecs}
        for name in ("BitArray", "DataBin", "SamplerPubResult", "PubResult", "PrimitiveResult"):
            self.by_name[name] = Codec(name, _never, _never, _refuse_reading(name))

    def unsupported(self, obj: Any) -> UnsupportedTypeError:
        return UnsupportedTypeError(
            f"a {type_name(obj)} cannot be sent to {CLIENT}: qruntime has no envelope for it"
        )


def _refuse_reading(name: str) -> Any:
    def refuse(value: Any) -> Any:
        raise ValueError(f"a {name} is a result, not an input qruntime takes")

    return refuse


def loads(text: str | bytes, *, max_bytes: int) -> Any:
    """Parse a payload of the client; compressed values may inflate to ``max_bytes`` in all."""
    table = TableToday(max_bytes)
    return loads_with(json.JSONDecoder(object_hook=table.decode_envelope), text)


class _EncoderToday(json.JSONEncoder):
    table = TableToday(0)  # writing inflates nothing, so the budget is never used

    def iterencode(self, o: Any, _one_shot: bool = False) -> Any:
        return super().iterencode(self.table.claim_subclasses(o), _one_shot)

    def default(self, o: Any) -> Any:
        return self.table.default(o)


def dumps(obj: Any) -> str:
    """Write ``obj`` as the client's RuntimeDecoder reads it; UnsupportedTypeError if it can't."""
    try:
        return json.dumps(obj, cls=_EncoderToday, allow_nan=True)
    except UnsupportedTypeError:
        raise
    except (TypeError, ValueError) as exc:
        raise UnsupportedTypeError(f"cannot be sent to {CLIENT}: {exc}") from exc
