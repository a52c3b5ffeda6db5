"""A V2 primitive's job inputs, as the client sends them, as the catalogue program's inputs.

``SamplerV2`` and ``EstimatorV2`` send ``{"pubs": [...], "options": {...}, "version": 2, ...}``;
the catalogue's ``sampler`` and ``estimator`` programs take ``pubs`` and a few flat options.
Circuits must already match the backend (ISA), as on IBM's service, so the programs run them
with no further optimisation. Options qruntime does not apply are refused by name, never
silently dropped; options set to their "off" value are accepted.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from qiskit import QuantumCircuit

from qruntime.backends import BackendRegistry
from qruntime.domain.errors import InvalidInputsError, Problem

SAMPLER, ESTIMATOR = "sampler", "estimator"
PRIMITIVES = (SAMPLER, ESTIMATOR)
#: Top-level inputs the client adds besides ``pubs`` and ``options``.
_ENVELOPE_KEYS = {"pubs", "options", "version", "support_qiskit", "resilience_level"}
#: Option paths that change nothing here when they hold these values (their "off" values).
_HARMLESS: dict[str, tuple[Any, ...]] = {
    "execution.init_qubits": (True,),
    "execution.meas_type": ("classified",),
    "dynamical_decoupling.enable": (False,),
    "twirling.enable_gates": (False,),
    "twirling.enable_measure": (False,),
    "resilience.measure_mitigation": (False,),
    "resilience.zne_mitigation": (False,),
    "resilience.pec_mitigation": (False,),
    "resilience_level": (0,),
}
_WHY = {
    "twirling": "qruntime applies no Pauli twirling",
    "dynamical_decoupling": "qruntime's simulators have no idle-qubit decoherence to suppress",
    "resilience": "qruntime applies no error mitigation",
    "resilience_level": "qruntime applies no error mitigation (only level 0)",
    "execution": "qruntime's simulators return classified bits of freshly reset qubits only",
    "simulator": "a backend's noise, coupling map and basis gates are the backend's own here",
    "experimental": "qruntime offers no experimental options",
}


def native_inputs(
    program_id: str, params: Any, registry: BackendRegistry, backend: str
) -> dict[str, Any]:
    """The catalogue program's inputs; InvalidInputsError naming the option or PUB at fault."""
    if not isinstance(params, dict):
        raise InvalidInputsError(Problem("params", "must be a JSON object"))
    unknown = sorted(set(params) - _ENVELOPE_KEYS)
    if unknown:
        raise InvalidInputsError(Problem(f"params.{unknown[0]}", "is not a primitive input"))
    if params.get("version", 2) != 2:
        raise InvalidInputsError(Problem("params.version", "only V2 primitives are served"))
    options = params.get("options") or {}
    if not isinstance(options, dict):
        raise InvalidInputsError(Problem("params.options", "must be a JSON object"))
    if "resilience_level" in params:
        options = {**options, "resilience_level": params["resilience_level"]}
    pubs = params.get("pubs")
    if not isinstance(pubs, list) or not pubs:
        raise InvalidInputsError(Problem("params.pubs", "must be a non-empty list of PUBs"))
    _check_isa(pubs, registry, backend)
    inputs: dict[str, Any] = {"pubs": pubs, "optimization_level": 0}
    taken = _take_options(program_id, options, inputs)
    for path, value in _leaves(options):
        if path in taken or value in _HARMLESS.get(path, ()) or value is None:
            continue
        why = _WHY.get(path.split(".")[0], "qruntime does not apply it")
        raise InvalidInputsError(Problem(f"options.{path}", f"is not supported: {why}"))
    return inputs


def _take_options(program_id: str, options: dict[str, Any], inputs: dict[str, Any]) -> set[str]:
    """Move the options the program applies into ``inputs``; the paths it took."""
    taken = set()
    simulator = options.get("simulator") or {}
    seed = simulator.get("seed_simulator") if isinstance(simulator, dict) else None
    if seed is not None:
        inputs["seed_simulator"] = seed
        taken.add("simulator.seed_simulator")
    if program_id == SAMPLER:
        if options.get("default_shots") is not None:
            inputs["shots"] = options["default_shots"]
            taken.add("default_shots")
        return taken
    if options.get("seed_estimator") is not None:
        inputs.setdefault("seed_simulator", options["seed_estimator"])
        taken.add("seed_estimator")
    if options.get("default_precision") is not None:
        inputs["precision"] = options["default_precision"]
        taken.add("default_precision")
    shots = options.get("default_shots")
    if shots is not None:
        if not isinstance(shots, int) or isinstance(shots, bool) or shots < 1:
            raise InvalidInputsError(Problem("options.default_shots", "must be an integer >= 1"))
        inputs["precision"] = shots**-0.5  # IBM's rule: default_shots overrides precision
        taken.add("default_shots")
    return taken


def _leaves(options: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in options.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and path not in _HARMLESS:
            yield from _leaves(value, path + ".")
        else:
            yield path, value


def _check_isa(pubs: list[Any], registry: BackendRegistry, backend: str) -> None:
    """IBM's rule with IBM's words: circuits on a device must match its target already."""
    from qiskit_ibm_runtime.utils.utils import is_isa_circuit  # a second's import; not at start

    if registry.info(backend).noisy is False and not backend.startswith("fake_"):
        return  # the ideal simulator takes any circuit, as IBM's client checks none for it
    target = registry.get(backend).target
    for index, pub in enumerate(pubs):
        circuit = pub[0] if isinstance(pub, list) and pub else pub
        if not isinstance(circuit, QuantumCircuit):
            raise InvalidInputsError(Problem(f"pubs[{index}]", "has no QuantumCircuit first"))
        message = is_isa_circuit(circuit, target)
        if message:
            raise InvalidInputsError(
                Problem(
                    f"pubs[{index}]",
                    f"{message} Circuits that do not match the target hardware definition are "
                    "not supported: transpile them first, e.g. with "
                    "generate_preset_pass_manager(backend=backend).run(circuit)",
                )
            )
