"""Units: Databento fixed-point prices (int64, 1e-9) -> float points, in one place.

``to_points`` is the conversion every feature uses (DESIGN.md §4: Silver converts to float
points once, in one function); ``px_points`` is the same formula as a numba scalar for the
kernels' hot loops.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ..core.constants import FIXED_SCALE, UNDEF_PRICE  # noqa: F401 (FIXED_SCALE re-exported)


def to_points(fixed) -> np.ndarray | float:
    """Fixed-point price(s) -> float64 points; the undefined-price sentinel -> NaN."""
    a = np.asarray(fixed)
    if a.dtype == np.uint64:
        a = a.view(np.int64)
    a = a.astype(np.int64, copy=False)
    out = np.where(a == UNDEF_PRICE, np.nan, a / FIXED_SCALE)
    return float(out) if out.ndim == 0 else out


@njit(cache=True, inline="always")
def px_points(fixed):
    """Scalar ``to_points`` for numba kernels (same formula)."""
    if fixed == UNDEF_PRICE:
        return np.nan
    return fixed / FIXED_SCALE
