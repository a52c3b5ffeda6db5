"""Positions for drawing a coupling map: stress majorisation on hop distances, so lattices
(heavy-hex, grids, lines) come out flat and regular without hand-made coordinates per device."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import rustworkx as rx

_ITERATIONS = 200


def layout(num_qubits: int, edges: tuple[tuple[int, int], ...]) -> list[tuple[float, float]]:
    """(x, y) per qubit in [0, 1] (aspect kept); deterministic for the same graph."""
    return list(_layout(num_qubits, tuple(sorted(set(edges)))))


@lru_cache(maxsize=64)
def _layout(num_qubits: int, edges: tuple[tuple[int, int], ...]) -> tuple[tuple[float, float], ...]:
    if num_qubits <= 1:
        return ((0.5, 0.5),) * num_qubits
    graph = rx.PyGraph()
    graph.add_nodes_from(range(num_qubits))
    graph.add_edges_from_no_data(list(edges))
    hops = rx.distance_matrix(graph, null_value=np.inf)
    np.fill_diagonal(hops, 0)
    finite = hops[np.isfinite(hops)]
    hops[~np.isfinite(hops)] = (finite.max() if finite.size else 0) + 2  # apart, not infinite
    points = _stress_majorisation(hops, _classical_mds(hops))
    points -= points.min(axis=0)
    points /= max(points.max(), 1e-9)
    return tuple((float(x), float(y)) for x, y in points)


def _classical_mds(dist: np.ndarray) -> np.ndarray:
    """A good starting point: the 2-D embedding that best keeps squared distances."""
    n = len(dist)
    centre = np.eye(n) - np.ones((n, n)) / n
    values, vectors = np.linalg.eigh(-0.5 * centre @ (dist**2) @ centre)
    top = np.argsort(values)[::-1][:2]
    start = vectors[:, top] * np.sqrt(np.maximum(values[top], 1e-9))
    jitter = np.random.default_rng(0).normal(scale=1e-3, size=start.shape)
    return start + jitter


def _stress_majorisation(dist: np.ndarray, points: np.ndarray) -> np.ndarray:
    """SMACOF with weights 1/d², the usual choice for graph drawing (Gansner et al. 2004)."""
    n = len(dist)
    with np.errstate(divide="ignore"):
        weights = np.where(dist > 0, 1.0 / dist**2, 0.0)
    laplacian = -weights
    np.fill_diagonal(laplacian, weights.sum(axis=1))
    inverse = np.linalg.pinv(laplacian)
    for _ in range(_ITERATIONS):
        gaps = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(gaps > 1e-12, weights * dist / gaps, 0.0)
        pull = -ratio
        np.fill_diagonal(pull, ratio.sum(axis=1))
        points = inverse @ (pull @ points)
    return points - points.mean(axis=0) if n else points
