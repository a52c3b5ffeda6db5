"""Publishes a VQE-shaped message per iteration (energy falling towards -1), ``delay`` apart."""

import math
import time


def main(backend, user_messenger, iterations=12, delay=0.3, **kwargs):
    energy = 0.0
    for it in range(1, iterations + 1):
        if it > 1:
            time.sleep(delay)
        energy = -1.0 + math.exp(-it / 4) + 0.01 * math.sin(3 * it)
        user_messenger.publish(
            {"iteration": it, "energy": energy, "parameters": [0.1 * it, -0.05 * it]}
        )
        print(f"iteration {it}: energy {energy:.5f}")
    return {"optimal_value": energy, "iterations": iterations}
