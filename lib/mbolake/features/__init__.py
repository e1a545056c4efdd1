"""Feature kernels (numpy/pandas/numba only, no Spark, no I/O): 5-second bars and helpers."""
from .bars import BAR_COLUMNS, FEATURE_COLUMNS, BarBuilder, BarParams, build_bars
from .units import to_points

__all__ = ["BAR_COLUMNS", "FEATURE_COLUMNS", "BarBuilder", "BarParams", "build_bars", "to_points"]
