"""A script written for IBM's Qiskit Runtime service, run on qruntime (docs/compat.md).

Only the construction of ``QiskitRuntimeService`` differs from IBM's: qruntime's URL and
``url_resolver``, with ``IAM_URL``, ``GLOBAL_SEARCH_URL`` and ``GLOBAL_CATALOG_URL`` set in the
environment. ``QRUNTIME_TOKEN`` is a qruntime token, ``QRUNTIME_INSTANCE`` its user's instance
(``qruntime account show`` prints it), ``QRUNTIME_API`` the server's URL followed by ``/api/v1``.
"""

import os

from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp
from qiskit.transpiler import generate_preset_pass_manager
from qiskit_ibm_runtime import EstimatorV2, QiskitRuntimeService, SamplerV2, Session

service = QiskitRuntimeService(
    channel="ibm_quantum_platform",
    url=os.environ["QRUNTIME_API"],
    token=os.environ["QRUNTIME_TOKEN"],
    instance=os.environ["QRUNTIME_INSTANCE"],
    url_resolver=lambda url, *args: url,
)

# --- from here on, the script is as it would be for IBM's service ---------------------------
backend = service.least_busy(simulator=False, operational=True, min_num_qubits=127)
print("backend:", backend.name, backend.num_qubits, "qubits")

bell = QuantumCircuit(2)
bell.h(0)
bell.cx(0, 1)
measured = bell.measure_all(inplace=False)
pass_manager = generate_preset_pass_manager(backend=backend, optimization_level=1)

sampler = SamplerV2(mode=backend)
sampler.options.default_shots = 1000
job = sampler.run([pass_manager.run(measured)])
counts = job.result()[0].data.meas.get_counts()
print("sampler job", job.job_id(), job.status(), "counts:", dict(sorted(counts.items())))

isa_bell = pass_manager.run(bell)
observables = [SparsePauliOp(label).apply_layout(isa_bell.layout) for label in ("ZZ", "XX")]
estimator = EstimatorV2(mode=backend)
estimator.options.default_precision = 0.02
values = estimator.run([(isa_bell, observables)]).result()[0].data
print("estimator <ZZ>, <XX>:", [round(float(v), 1) for v in values.evs])

with Session(backend=backend, max_time=600) as session:
    first = SamplerV2(mode=session).run([pass_manager.run(measured)], shots=200)
    second = EstimatorV2(mode=session).run([(isa_bell, observables[0])])
    shots = sum(first.result()[0].data.meas.get_counts().values())
    zz = round(float(second.result()[0].data.evs), 1)
    print("session", session.session_id, "jobs:", second.status(), shots, "shots, <ZZ>", zz)
