"""The order in which models are shown: clustered (similar models next to each other) or as added."""

from __future__ import annotations

from typing import Any

import numpy as np

ORDERS = ("clustered", "input")


def cluster_order(matrix: np.ndarray) -> tuple[list[int], Any]:
    """Leaf order of an average-linkage tree on distance 1 - r, optimally ordered; (order, linkage or None)."""
    n = len(matrix)
    if n < 3:
        return list(range(n)), None
    from scipy.cluster.hierarchy import leaves_list, linkage, optimal_leaf_ordering
    from scipy.spatial.distance import squareform

    d = 1.0 - np.where(np.isfinite(matrix), matrix, 0.0)  # undefined r: no evidence either way
    d = np.clip((d + d.T) / 2.0, 0.0, 2.0)
    np.fill_diagonal(d, 0.0)
    y = squareform(d, checks=False)
    z = optimal_leaf_ordering(linkage(y, method="average"), y)
    return [int(i) for i in leaves_list(z)], z


def display_order(matrix: np.ndarray, order: str) -> list[int]:
    """Row (and column) order of a model-by-model matrix: ``clustered`` or ``input`` (as added)."""
    return cluster_order(matrix)[0] if order == "clustered" else list(range(len(matrix)))
