"""The names of the simulators every server has, importable without qiskit (the CLI's defaults)."""

IDEAL_SIMULATOR = "aer_simulator"
GPU_SIMULATOR = "aer_simulator_gpu"
