"""Small numba helpers of the bar features (FEATURES.md §3): bands, wall z-scores, OFI.

Pure functions over scalars and short arrays; ``bars`` composes them per book state.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

EPS = 1e-9
INT64_MIN = np.iinfo(np.int64).min


@njit(cache=True, inline="always")
def band_index(d, edges):
    """Band of a distance d from the microprice (same units as edges): 0 for d <= edges[0], b for
    edges[b-1] < d <= edges[b], -1 beyond the last edge (dropped) or for NaN."""
    if not (d <= edges[edges.shape[0] - 1]):
        return -1
    for b in range(edges.shape[0]):
        if d <= edges[b]:
            return b
    return -1


@njit(cache=True)
def wall_scores(sizes, z):
    """z_i = (q_i - mean)/max(std, eps), q_i = ln(1 + size_i), population std; fills z.
    Returns (max z, its first level)."""
    n = sizes.shape[0]
    s = 0.0
    for i in range(n):
        z[i] = math.log1p(float(sizes[i]))
        s += z[i]
    mean = s / n
    v = 0.0
    for i in range(n):
        v += (z[i] - mean) * (z[i] - mean)
    std = math.sqrt(v / n)
    if std < EPS:
        std = EPS
    best = -np.inf
    arg = 0
    for i in range(n):
        z[i] = (z[i] - mean) / std
        if z[i] > best:
            best = z[i]
            arg = i
    return best, arg


@njit(cache=True, inline="always")
def ofi_level(pb0, qb0, pa0, qa0, pb1, qb1, pa1, qa1):
    """Cont-Kukanov-Stoikov order-flow imbalance of one level between two states
    (0 = before, 1 = after); prices are fixed-point with empty bids at INT64_MIN and
    empty asks at INT64_MAX (size 0), so a level appearing counts as an add."""
    e = 0.0
    if pb1 >= pb0:
        e += qb1
    if pb1 <= pb0:
        e -= qb0
    if pa1 <= pa0:
        e -= qa1
    if pa1 >= pa0:
        e += qa0
    return e
