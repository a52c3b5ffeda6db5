"""The allow-listed type handlers: numpy, builtins and qiskit values, and the native table.

Each handler turns one type into JSON-shaped data and back; nothing here imports a module a
payload names or unpickles (numpy payloads are read with ``allow_pickle=False``, their headers
checked first). :data:`NATIVE_TABLE` lists every type qruntime's own envelopes carry.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
from qiskit import QuantumCircuit, qpy
from qiskit import quantum_info as qi
from qiskit.circuit import Gate, Parameter, ParameterExpression, ParameterVectorElement
from qiskit.primitives import BitArray, DataBin, PrimitiveResult, PubResult, SamplerPubResult
from qiskit.primitives.containers import BindingsArray, ObservablesArray
from qiskit.result import Result

from qruntime.serialization import arrays, primitives, sparse
from qruntime.serialization.envelope import (
    Codec,
    CodecTable,
    b64decode,
    b64encode,
    expect,
    isa,
)

# --- builtins --------------------------------------------------------------------------------


def _decode_complex(value: Any) -> complex:
    parts = expect(value, list, "[real, imag]")
    if len(parts) != 2:
        raise ValueError(f"expected [real, imag], got {len(parts)} items")
    real, imag = (expect(p, (int, float), "a number") for p in parts)
    return complex(real, imag)


def _decode_set(value: Any) -> set:
    return set(expect(value, list, "a list of items"))


def _decode_frozenset(value: Any) -> frozenset:
    return frozenset(expect(value, list, "a list of items"))


# --- qiskit ----------------------------------------------------------------------------------


def qpy_dump(circuit: QuantumCircuit) -> str:
    buf = io.BytesIO()
    qpy.dump(circuit, buf)
    return b64encode(buf.getvalue())


def qpy_load(value: Any) -> QuantumCircuit:
    circuits = qpy.load(io.BytesIO(b64decode(value)))
    if len(circuits) != 1 or not isinstance(circuits[0], QuantumCircuit):
        raise ValueError(f"expected one QuantumCircuit in the QPY payload, got {len(circuits)}")
    return circuits[0]


def _encode_parameter(expr: ParameterExpression) -> str:
    """QPY has no public entry point for a bare expression, so it rides on a carrier gate."""
    carrier = QuantumCircuit(1)
    carrier.append(Gate("carrier", 1, [expr]), [0])
    return qpy_dump(carrier)


def _decoder_for_parameter(cls: type) -> Callable[[Any], Any]:
    def decode_parameter(value: Any) -> Any:
        circuit = qpy_load(value)
        if len(circuit.data) != 1 or len(circuit.data[0].operation.params) != 1:
            raise ValueError("expected one carrier gate with a single parameter")
        param = circuit.data[0].operation.params[0]
        if not isinstance(param, cls):
            raise ValueError(f"expected a {cls.__name__}, got {type(param).__name__}")
        return param

    return decode_parameter


def _decode_result(value: Any) -> Result:
    return Result.from_dict(expect(value, dict, "a Result dict"))


def _settings_codec(cls: type) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """quantum_info classes rebuild from their ``.settings`` kwargs: ``cls(**o.settings) == o``."""

    def decode_settings(value: Any) -> Any:
        return cls(**expect(value, dict, "a settings dict"))

    return (lambda o: dict(o.settings)), decode_settings


def _encode_sparse_pauli_op(op: qi.SparsePauliOp) -> dict:
    """Parameterised coefficients live in an object array, so send those as a plain list."""
    coeffs = op.coeffs
    return {"data": op.paulis, "coeffs": coeffs.tolist() if coeffs.dtype.hasobject else coeffs}


def _decode_spo(value: Any) -> qi.SparsePauliOp:
    settings = dict(expect(value, dict, "a settings dict"))
    if isinstance(settings.get("coeffs"), list):
        settings["coeffs"] = np.array(settings["coeffs"], dtype=object)
    return qi.SparsePauliOp(**settings)


def _encode_sparse_obs(obs: qi.SparseObservable) -> dict:
    return {"num_qubits": obs.num_qubits, "terms": obs.to_sparse_list()}


def _decode_sparse_obs(value: Any) -> qi.SparseObservable:
    value = expect(value, dict, "a dict with num_qubits and terms")
    terms = [tuple(expect(t, list, "[label, indices, coeff]")) for t in value["terms"]]
    return qi.SparseObservable.from_sparse_list(terms, num_qubits=value["num_qubits"])


# --- the table -------------------------------------------------------------------------------


def _param_codec(name: str, cls: type) -> Codec:
    return Codec(name, isa(cls), _encode_parameter, _decoder_for_parameter(cls))


def _qi_codec(cls: type) -> Codec:
    return Codec(cls.__name__, isa(cls), *_settings_codec(cls))


def _pub_result_codec(cls: type[PubResult]) -> Codec:
    return Codec(
        cls.__name__, isa(cls), primitives.encode_pub_result, primitives.decoder_for_pub_result(cls)
    )


# Order matters where types overlap: the first codec whose ``matches`` holds encodes the value.
P = primitives  # the V2 containers' handlers, short for the table below

# Order matters where types overlap: the first codec whose ``matches`` holds encodes the value.
NATIVE_TABLE = CodecTable(
    (
        Codec("ndarray", isa(np.ndarray), arrays.encode_ndarray, arrays.decode_ndarray),
        # numpy scalars before complex: np.complex128 is a complex
        Codec("numpy_scalar", isa(np.generic), arrays.encode_np_scalar, arrays.decode_np_scalar),
        Codec("complex", isa(complex), lambda c: [c.real, c.imag], _decode_complex),
        Codec("set", isa(set), list, _decode_set),
        Codec("frozenset", isa(frozenset), list, _decode_frozenset),
        Codec("datetime", isa(dt.datetime), dt.datetime.isoformat, dt.datetime.fromisoformat),
        Codec("date", isa(dt.date), dt.date.isoformat, dt.date.fromisoformat),
        Codec("QuantumCircuit", isa(QuantumCircuit), qpy_dump, qpy_load),
        _param_codec("ParameterVectorElement", ParameterVectorElement),
        _param_codec("Parameter", Parameter),
        _param_codec("ParameterExpression", ParameterExpression),
        Codec("Result", isa(Result), Result.to_dict, _decode_result),
        Codec("SparsePauliOp", isa(qi.SparsePauliOp), _encode_sparse_pauli_op, _decode_spo),
        _qi_codec(qi.PauliList),
        _qi_codec(qi.Pauli),
        _qi_codec(qi.Statevector),
        _qi_codec(qi.DensityMatrix),
        _qi_codec(qi.Operator),
        Codec("SparseObservable", isa(qi.SparseObservable), _encode_sparse_obs, _decode_sparse_obs),
        Codec("scipy_sparse", sp.issparse, sparse.encode_sparse, sparse.decode_sparse),
        Codec("BitArray", isa(BitArray), P.encode_bit_array, P.decode_bit_array),
        Codec("DataBin", isa(DataBin), P.encode_data_bin, P.decode_data_bin),
        _pub_result_codec(SamplerPubResult),  # a PubResult subclass, so it goes first
        _pub_result_codec(PubResult),
        Codec(
            "PrimitiveResult",
            isa(PrimitiveResult),
            P.encode_primitive_result,
            P.decode_primitive_result,
        ),
        Codec("BindingsArray", isa(BindingsArray), P.encode_bindings, P.decode_bindings),
        Codec(
            "ObservablesArray", isa(ObservablesArray), P.encode_observables, P.decode_observables
        ),
    )
)
