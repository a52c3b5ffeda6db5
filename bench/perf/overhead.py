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


def main(backend, user_messenger, iterations=100, seed=7, threads=0, publish=True):
    if threads:
        backend.set_options(max_parallel_threads=threads)
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
        if publish:
            user_messenger.publish({"iteration": it, "energy": energy})
    return time.perf_counter() - started
"""


def cases(hello: int = 20, vqe: int = 100) -> tuple[tuple[str, str, str, dict], ...]:
    """(row label, program name, source, inputs). The last two rows take the VQE-style loop
    apart: without its interim results, and with one of the two cores left to the server (Aer
    runs one thread, in the job and directly alike)."""
    return (
        (f"hello-world loop, {hello} iterations", "hello-loop", HELLO_LOOP, {"iterations": hello}),
        (f"VQE-style bind-and-run, {vqe} iterations", "vqe-loop", VQE_LOOP, {"iterations": vqe}),
        (
            f"VQE-style, {vqe} iterations, publishing no interim results",
            "vqe-loop",
            VQE_LOOP,
            {"iterations": vqe, "publish": False},
        ),
        (
            f"VQE-style, {vqe} iterations, Aer on 1 thread (a core left for the server)",
            "vqe-loop",
            VQE_LOOP,
            {"iterations": vqe, "threads": 1},
        ),
    )


def run(server: BenchServer, repeats: int = 5, *, scale: float = 1.0) -> list[Row]:
    """Direct and in-job runs alternate, so that both see the machine in the same state;
    ``scale`` shortens the loops (a smoke run)."""
    service = RuntimeService(url=server.url, token=server.token)
    messenger = SimpleNamespace(publish=lambda *args, **kwargs: None)
    backend = get_backend("aer_simulator")
    uploaded: dict[str, str] = {}
    rows = []
    for name, program, source, inputs in cases(
        max(1, round(20 * scale)), max(1, round(100 * scale))
    ):
        if program not in uploaded:
            uploaded[program] = service.upload_program(source, metadata(program))
        module = load_program(source, "bench-direct", module_name="bench_direct_program")

        def in_job(program_id: str = uploaded[program], inputs: dict = inputs) -> float:
            wait_for_warm_pool(server, 2)
            job = service.run(program_id, inputs, options={"backend_name": "aer_simulator"})
            return job.result(timeout=600)

        module.main(backend, messenger, **inputs)  # warm-up: first transpile and Aer start
        in_job()  # and the server's first use of the program (its caches) is not counted
        direct_times, job_times = [], []
        for _ in range(repeats):
            direct_times.append(module.main(backend, messenger, **inputs))
            job_times.append(in_job())
        direct, job = statistics.median(direct_times), statistics.median(job_times)
        rows.append(
            Row(
                "in-program overhead",
                f"{name}, median of {repeats}",
                f"{(job / direct - 1) * 100:+.1f}% ({job * 1000:.0f} vs {direct * 1000:.0f} ms)",
                "≤ 5%",
                "same code run directly",
            )
        )
    return rows
