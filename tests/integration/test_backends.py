"""The backend registry: names, descriptions, real Qiskit backends and program requirements."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from qiskit import QuantumCircuit, transpile
from qiskit.primitives import BackendEstimatorV2, BackendSamplerV2
from qiskit.providers import BackendV2
from qiskit.quantum_info import SparsePauliOp

from qruntime.backends import (
    IDEAL_SIMULATOR,
    BackendInfo,
    BackendRegistry,
    build_default_registry,
    check_backend_requirements,
    default_registry,
    get_backend,
)
from qruntime.domain import (
    BackendError,
    BackendRequirementsError,
    UnknownBackendError,
    ValidationFailed,
    load_metadata,
)

HELLO_WORLD_METADATA = (
    Path(__file__).resolve().parents[1] / "fixtures" / "programs" / "hello_world.json"
)


@pytest.fixture(scope="module")
def registry() -> BackendRegistry:
    return default_registry()


def bell() -> QuantumCircuit:
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.cx(0, 1)
    return qc


def test_default_registry_is_one_cached_instance() -> None:
    assert default_registry() is default_registry()


def test_names_are_sorted_and_include_the_simulator_and_fake_devices(
    registry: BackendRegistry,
) -> None:
    names = registry.names()
    assert names == sorted(names)
    assert len(names) == len(set(names))
    assert IDEAL_SIMULATOR == "aer_simulator"
    assert "aer_simulator" in names
    assert "aer_simulator" in registry
    fakes = [n for n in names if n.startswith("fake_")]
    assert len(fakes) >= 30
    for name in ("fake_manila", "fake_montreal", "fake_armonk", "fake_washington"):
        assert name in registry
    assert "FakeManilaV2" not in registry
    assert "nope" not in registry
    assert 42 not in registry


def test_registry_without_fake_devices(registry: BackendRegistry) -> None:
    small = build_default_registry(include_fake_devices=False)
    assert "aer_simulator" in small.names()
    assert not [n for n in small.names() if n.startswith("fake_")]


def test_info_of_fake_devices(registry: BackendRegistry) -> None:
    manila = registry.info("fake_manila")
    assert isinstance(manila, BackendInfo)
    assert manila.name == "fake_manila"
    assert manila.num_qubits == 5
    assert manila.noisy is True
    assert manila.simulator is True
    assert manila.device == "CPU"
    assert "manila" in manila.description
    assert {"cx", "rz", "sx", "x", "measure"} <= set(manila.basis_gates)
    assert manila.basis_gates == sorted(manila.basis_gates)
    assert manila.coupling_map_edges == 8  # a line of 5 qubits, both directions

    montreal = registry.info("fake_montreal")
    assert montreal.num_qubits == 27
    assert montreal.noisy is True
    assert montreal.coupling_map_edges is not None
    assert montreal.coupling_map_edges > 26

    armonk = registry.info("fake_armonk")
    assert armonk.num_qubits == 1
    assert armonk.coupling_map_edges == 0
    assert "cx" not in armonk.basis_gates


def test_info_of_the_ideal_simulator(registry: BackendRegistry) -> None:
    info = registry.info("aer_simulator")
    assert info.name == "aer_simulator"
    assert info.noisy is False
    assert info.simulator is True
    assert info.device == "CPU"
    assert info.coupling_map_edges is None
    assert info.num_qubits >= 20
    assert {"h", "cx", "measure", "rz", "u"} <= set(info.basis_gates)


def test_info_is_cached_and_round_trips_through_json(registry: BackendRegistry) -> None:
    info = registry.info("fake_manila")
    assert registry.info("fake_manila") is info
    payload = json.loads(json.dumps(info.to_json()))
    assert BackendInfo.from_json(payload) == info


def test_get_returns_a_cached_backend_v2(registry: BackendRegistry) -> None:
    backend = registry.get("fake_manila")
    assert isinstance(backend, BackendV2)
    assert backend.name == "fake_manila"
    assert backend.num_qubits == 5
    assert registry.get("fake_manila") is backend
    assert get_backend("fake_manila") is backend
    ideal = registry.get("aer_simulator")
    assert isinstance(ideal, BackendV2)
    assert ideal is get_backend("aer_simulator")
    assert ideal is not backend


def test_transpile_and_run_on_a_fake_device(registry: BackendRegistry) -> None:
    backend = registry.get("fake_manila")
    qc = bell()
    qc.measure_all()
    tqc = transpile(qc, backend, seed_transpiler=7)
    assert set(tqc.count_ops()) - {"barrier"} <= set(backend.operation_names)
    counts = backend.run(tqc, shots=500, seed_simulator=11).result().get_counts()
    assert sum(counts.values()) == 500
    correlated = counts.get("00", 0) + counts.get("11", 0)
    assert correlated > 400  # noisy, but mostly a Bell state


def test_ideal_simulator_runs_a_bell_state_exactly(registry: BackendRegistry) -> None:
    backend = registry.get("aer_simulator")
    qc = bell()
    qc.measure_all()
    counts = backend.run(transpile(qc, backend), shots=300).result().get_counts()
    assert sum(counts.values()) == 300
    assert set(counts) <= {"00", "11"}


def test_backend_sampler_v2_on_a_fake_device(registry: BackendRegistry) -> None:
    backend = registry.get("fake_manila")
    qc = bell()
    qc.measure_all()
    sampler = BackendSamplerV2(backend=backend)
    result = sampler.run([transpile(qc, backend, seed_transpiler=3)], shots=400).result()
    counts = result[0].data.meas.get_counts()
    assert sum(counts.values()) == 400
    assert counts.get("00", 0) + counts.get("11", 0) > 320


def test_backend_estimator_v2_zz_on_a_bell_state(registry: BackendRegistry) -> None:
    backend = registry.get("aer_simulator")
    estimator = BackendEstimatorV2(backend=backend, options={"default_precision": 0.02})
    tqc = transpile(bell(), backend)
    observables = [SparsePauliOp("ZZ"), SparsePauliOp("ZI"), SparsePauliOp("XX")]
    observables = [obs.apply_layout(tqc.layout) for obs in observables]
    result = estimator.run([(tqc, observables)]).result()
    zz, zi, xx = np.asarray(result[0].data.evs)
    assert zz == pytest.approx(1.0, abs=1e-9)  # the ideal Bell state has no ZZ noise at all
    assert xx == pytest.approx(1.0, abs=1e-9)
    assert abs(zi) < 0.1  # shot noise around 0: 2500 shots give a std of 0.02


def test_backend_estimator_v2_on_a_fake_device(registry: BackendRegistry) -> None:
    backend = registry.get("fake_manila")
    estimator = BackendEstimatorV2(backend=backend, options={"default_precision": 0.03})
    tqc = transpile(bell(), backend, seed_transpiler=5)
    zz = SparsePauliOp("ZZ").apply_layout(tqc.layout)
    result = estimator.run([(tqc, zz)]).result()
    assert 0.7 < float(result[0].data.evs) <= 1.0  # noisy device: close to, not exactly, 1


def test_unknown_name_raises_and_lists_names(registry: BackendRegistry) -> None:
    with pytest.raises(UnknownBackendError) as info:
        registry.get("fake_nowhere")
    error = info.value
    assert isinstance(error, BackendError)
    assert isinstance(error, LookupError)
    assert error.name == "fake_nowhere"
    message = str(error)
    assert message.startswith("unknown backend 'fake_nowhere'; available backends include: ")
    assert "aer_simulator" in message
    assert message.endswith(f", ... (qruntime backends lists all {len(registry.names())})")
    assert str(UnknownBackendError("fake_manilla", registry.names())) == (
        "unknown backend 'fake_manilla'; did you mean 'fake_manila'? "
        f"(qruntime backends lists all {len(registry.names())})"
    )
    with pytest.raises(UnknownBackendError, match="'ibm_kyiv'"):
        registry.info("ibm_kyiv")
    with pytest.raises(UnknownBackendError, match="'fake_nowhere'"):
        get_backend("fake_nowhere")


def test_small_registry_lists_every_name_without_ellipsis() -> None:
    small = build_default_registry(include_fake_devices=False)
    with pytest.raises(UnknownBackendError) as info:
        small.get("missing")
    assert f"include: {', '.join(small.names())} (" in str(info.value)


@pytest.fixture(scope="module")
def hello_world_metadata():
    return load_metadata(HELLO_WORLD_METADATA.read_text())


def test_requirements_met(registry: BackendRegistry, hello_world_metadata) -> None:
    assert hello_world_metadata.spec.backend_requirements.min_num_qubits == 5
    check_backend_requirements(hello_world_metadata, registry.get("fake_manila"))
    check_backend_requirements(hello_world_metadata, registry.info("fake_manila"))
    check_backend_requirements(hello_world_metadata, registry.info("fake_montreal"))
    check_backend_requirements(hello_world_metadata.spec, registry.info("aer_simulator"))
    check_backend_requirements({"min_num_qubits": 5}, registry.info("fake_manila"))
    check_backend_requirements({}, registry.info("fake_armonk"))
    check_backend_requirements(None, registry.info("fake_armonk"))


@pytest.mark.parametrize("as_backend", [False, True])
def test_requirements_refused_with_both_numbers(
    registry: BackendRegistry, hello_world_metadata, as_backend: bool
) -> None:
    backend = registry.get("fake_armonk") if as_backend else registry.info("fake_armonk")
    with pytest.raises(BackendRequirementsError) as info:
        check_backend_requirements(hello_world_metadata, backend)
    error = info.value
    assert isinstance(error, ValidationFailed)
    assert isinstance(error, BackendError)
    message = str(error)
    assert "min_num_qubits" in message
    assert "at least 5 qubits" in message
    assert "'fake_armonk' has 1" in message
    assert [p.location for p in error.problems] == ["backend"]


def test_requirements_refused_from_a_plain_dict(registry: BackendRegistry) -> None:
    with pytest.raises(BackendRequirementsError, match=r"at least 6 qubits.*'fake_manila' has 5"):
        check_backend_requirements({"min_num_qubits": 6}, registry.info("fake_manila"))


#: Builds the named backends in a fresh registry; prints the names that came out wrong.
_BUILD_AND_CHECK = """
import json, sys, warnings
warnings.filterwarnings("ignore", "Properties of fake_.* are not intended", UserWarning)
from qiskit.providers import BackendV2
from qruntime.backends import build_default_registry
registry = build_default_registry()
wrong = []
for name in json.loads(sys.argv[1]):
    backend, info = registry.get(name), registry.info(name)
    if not (isinstance(backend, BackendV2) and backend.name == name
            and backend.num_qubits == info.num_qubits
            and info.noisy is name.startswith("fake_")):
        wrong.append(name)
print(json.dumps(wrong))
"""


def _build_and_check(names: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _BUILD_AND_CHECK, json.dumps(names)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.filterwarnings("ignore:Properties of fake_.* are not intended:UserWarning")
def test_a_device_of_every_size_builds() -> None:
    """One device per qubit count up to 65, and the largest device, in every run (each noise
    model past 100 qubits takes many seconds to build); all 68 in the slow test."""
    registry = build_default_registry()
    by_size: dict[int, str] = {}
    for name in sorted(registry.names()):
        by_size.setdefault(registry.info(name).num_qubits, name)
    assert len(by_size) >= 8 and max(by_size) >= 127, by_size
    chosen = [name for size, name in by_size.items() if size <= 65] + [by_size[max(by_size)]]
    builder = _build_and_check(chosen)
    out, err = builder.communicate(timeout=280)
    assert builder.returncode == 0, err
    assert json.loads(out.splitlines()[-1]) == [], err


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Properties of fake_.* are not intended:UserWarning")
def test_every_registered_backend_builds() -> None:
    """Noise models of 127-qubit devices take seconds each, so two processes share the work."""
    registry = build_default_registry()
    by_size = sorted(registry.names(), key=lambda name: registry.info(name).num_qubits)
    halves = [by_size[0::2], by_size[1::2]]
    builders = [_build_and_check(half) for half in halves]
    for builder in builders:
        out, err = builder.communicate(timeout=280)
        assert builder.returncode == 0, err
        assert json.loads(out.splitlines()[-1]) == [], err
