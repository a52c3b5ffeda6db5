"""Performance benchmarks: measurements, not tests; run each script directly."""
