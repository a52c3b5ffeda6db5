"""estimator: Qiskit's V2 Estimator (``BackendEstimatorV2``) over the job's backend.

Users send abstract circuits with observables on the circuit's own qubits: each PUB's circuit is
transpiled for the backend here and its observables are moved onto the physical qubits the
circuit was laid out on. The result is the Estimator's ``PrimitiveResult``: one ``PubResult``
per PUB whose ``data`` holds the expectation values ``evs`` and their standard errors ``stds``,
broadcast over the PUB's observables and parameter values.
"""

from qiskit.primitives import BackendEstimatorV2
from qiskit.primitives.containers import BindingsArray, EstimatorPub
from qiskit.transpiler import generate_preset_pass_manager


def estimator_options(backend, precision, seed_simulator):
    """BackendEstimatorV2 options; the simulator seed only where the backend takes one."""
    options = {} if precision is None else {"default_precision": precision}
    if seed_simulator is not None and "seed_simulator" in backend.options:
        options["seed_simulator"] = seed_simulator
    return options


def coerce_pubs(pubs, default_precision):
    """Check each PUB against its circuit as sent, naming the PUB that is wrong."""
    coerced = []
    for index, pub in enumerate(pubs):
        try:
            coerced.append(EstimatorPub.coerce(pub, default_precision))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"pubs[{index}] is not a valid estimator PUB: {exc}") from exc
    return coerced


def keep_bound_parameters(bindings, circuit):
    """Drop values of parameters that transpilation optimised out of ``circuit``."""
    names = {parameter.name for parameter in circuit.parameters}
    data = {}
    for key, values in bindings.data.items():
        kept = [i for i, name in enumerate(key) if name in names]
        if kept:
            data[tuple(key[i] for i in kept)] = values[..., kept]
    return BindingsArray(data, shape=bindings.shape)


def transpile_pubs(pubs, pass_manager):
    """The same PUBs with ISA circuits and observables laid out on the same physical qubits."""
    isa_pubs = []
    for pub in pubs:
        circuit = pass_manager.run(pub.circuit)
        observables = pub.observables.apply_layout(circuit.layout, circuit.num_qubits)
        bindings = keep_bound_parameters(pub.parameter_values, circuit)
        isa_pubs.append(EstimatorPub(circuit, observables, bindings, pub.precision))
    return isa_pubs


def main(
    backend,
    user_messenger,
    *,
    pubs,
    precision=None,
    optimization_level=1,
    seed_transpiler=None,
    seed_simulator=None,
):
    """Transpile and estimate ``pubs`` on ``backend``; return the Estimator's PrimitiveResult."""
    estimator = BackendEstimatorV2(
        backend=backend, options=estimator_options(backend, precision, seed_simulator)
    )
    checked = coerce_pubs(pubs, estimator.options.default_precision)
    pass_manager = generate_preset_pass_manager(
        optimization_level=optimization_level, backend=backend, seed_transpiler=seed_transpiler
    )
    isa_pubs = transpile_pubs(checked, pass_manager)
    user_messenger.publish(
        {
            "status": "transpiled",
            "num_pubs": len(isa_pubs),
            "depths": [pub.circuit.depth() for pub in isa_pubs],
            "precisions": [pub.precision for pub in isa_pubs],
        }
    )
    return estimator.run(isa_pubs).result()
