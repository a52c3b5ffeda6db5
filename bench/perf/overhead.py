"""In-program overhead: the same loop inside a job (through the server) and run directly in one
Python process; each program times its own loop, so only the runtime's cost differs."""

from __future__ import annotations

import statistics
from types import SimpleNamespace

from common import Row, metadata
from server import BenchServer, wait_for_warm_pool

from qruntime.backends import get_backend
from qruntime.client import RuntimeService
from qruntime.execution.program_loader import load_program

HELLO_LOOP = """\
import time

from qiskit import transpile
from qiskit.circuit.random import random_circuit


def main(backend, user_messenger, iterations=20, seed=7):
    started = time.perf_counter()
    for it in range(iterations):
        qc = random_circuit(num_qubits=5, depth=4, measure=True, seed=seed + it)
        job = backend.run(transpile(qc, backend, seed_transpiler=seed), shots=1024)
        counts = job.result().get_counts()
        user_messenger.publish({"iteration": it, "counts": counts})
    return time.perf_counter() - started
"""

VQE_LOOP = """\
import time

import numpy as np
from qiskit import transpile
from qiskit.circuit.library import efficient_su2


def main(backend, user_messenger, iterations=100, seed=7):
    ansatz = efficient_su2(4, reps=2)
    ansatz.measure_all()
    circuit = transpile(ansatz, backend, seed_transpiler=seed)
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    for it in range(iterations):
        values = rng.uniform(-np.pi, np.pi, circuit.num_parameters)
        bound = circuit.assign_parameters(values)
        counts = backend.run(bound, shots=1024, seed_simulator=seed).result().get_counts()
        energy = sum((-1) ** bin(int(k, 2)).count("1") * v for k, v in counts.items()) / 1024
        user_messenger.publish({"iteration": it, "energy": energy})
    return time.perf_counter() - started
"""


def _direct(source: str, repeats: int) -> list[float]:
    module = load_program(source, "bench-direct", module_name="bench_direct_program")
    messenger = SimpleNamespace(publish=lambda *args, **kwargs: None)
    backend = get_backend("aer_simulator")
    module.main(backend, messenger)  # warm-up: first transpile and Aer start
    return [module.main(backend, messenger) for _ in range(repeats)]


def _in_job(server: BenchServer, source: str, name: str, repeats: int) -> list[float]:
    service = RuntimeService(url=server.url, token=server.token)
    program = service.upload_program(source, metadata(name))
    times = []
    for _ in range(repeats + 1):
        wait_for_warm_pool(server, 2)
        times.append(
            service.run(program, {}, options={"backend_name": "aer_simulator"}).result(timeout=600)
        )
    return times[1:]


def run(server: BenchServer, repeats: int = 5) -> list[Row]:
    rows = []
    for name, source in (
        ("hello-world loop, 20 iterations", HELLO_LOOP),
        ("VQE-style bind-and-run, 100 iterations", VQE_LOOP),
    ):
        direct = statistics.median(_direct(source, repeats))
        job = statistics.median(
            _in_job(server, source, name.split(",")[0].replace(" ", "-").lower(), repeats)
        )
        rows.append(
            Row(
                "in-program overhead",
                name,
                f"{(job / direct - 1) * 100:+.1f}% ({job * 1000:.0f} vs {direct * 1000:.0f} ms)",
                "≤ 5%",
                "same code run directly",
            )
        )
    return rows
