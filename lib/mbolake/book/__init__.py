"""Order-book kernel: rebuild L3 books from Databento MBO, emit MBP-10 (no Spark, no I/O).

``OrderBook`` is the fast path (numba, array state, checkpointable); ``ReferenceBook`` is
the plain-Python oracle the tests compare it with.
"""
from .mbp import COLUMN_NAMES as MBP10_COLUMNS
from .mbp import to_frame
from .orderbook import OrderBook
from .reference import ReferenceBook

__all__ = ["OrderBook", "ReferenceBook", "MBP10_COLUMNS", "to_frame"]
