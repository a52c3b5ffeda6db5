"""sampler: Qiskit's V2 Sampler (``BackendSamplerV2``) over the job's backend.

Users send abstract circuits: each PUB's circuit is transpiled for the backend here, then every
circuit is sampled once per set of parameter values. The result is the Sampler's
``PrimitiveResult``: one ``SamplerPubResult`` per PUB whose ``data`` holds a ``BitArray`` per
classical register, shaped like the PUB's parameter values.
"""

from qiskit.primitives import BackendSamplerV2
from qiskit.primitives.containers import BindingsArray, SamplerPub
from qiskit.transpiler import generate_preset_pass_manager


def sampler_options(backend, shots, seed_simulator):
    """BackendSamplerV2 options; the simulator seed only where the backend takes one."""
    options = {} if shots is None else {"default_shots": shots}
    if seed_simulator is not None and "seed_simulator" in backend.options:
        options["seed_simulator"] = seed_simulator
    return options


def coerce_pubs(pubs, default_shots):
    """Check each PUB against its circuit as sent, naming the PUB that is wrong."""
    coerced = []
    for index, pub in enumerate(pubs):
        try:
            coerced.append(SamplerPub.coerce(pub, default_shots))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"pubs[{index}] is not a valid sampler PUB: {exc}") from exc
        if not coerced[-1].circuit.cregs:
            raise ValueError(
                f"pubs[{index}] is not a valid sampler PUB: its circuit has no classical "
                "register, so there is nothing to sample; add measurements (measure_all())"
            )
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
    """The same PUBs with circuits rewritten for the backend (ISA circuits)."""
    isa_pubs = []
    for pub in pubs:
        circuit = pass_manager.run(pub.circuit)
        bindings = keep_bound_parameters(pub.parameter_values, circuit)
        isa_pubs.append(SamplerPub(circuit, bindings, pub.shots))
    return isa_pubs


def main(
    backend,
    user_messenger,
    *,
    pubs,
    shots=None,
    optimization_level=1,
    seed_transpiler=None,
    seed_simulator=None,
):
    """Transpile and sample ``pubs`` on ``backend``; return the Sampler's PrimitiveResult."""
    sampler = BackendSamplerV2(
        backend=backend, options=sampler_options(backend, shots, seed_simulator)
    )
    checked = coerce_pubs(pubs, sampler.options.default_shots)
    pass_manager = generate_preset_pass_manager(
        optimization_level=optimization_level, backend=backend, seed_transpiler=seed_transpiler
    )
    isa_pubs = transpile_pubs(checked, pass_manager)
    user_messenger.publish(
        {
            "status": "transpiled",
            "num_pubs": len(isa_pubs),
            "depths": [pub.circuit.depth() for pub in isa_pubs],
            "shots": [pub.shots for pub in isa_pubs],
        }
    )
    return sampler.run(isa_pubs).result()
