"""Engine parity's row comparison without an engine: order does not matter, NaN equals NaN,
null never equals a value, nested values are compared element by element, and the first
difference is named by its row keys."""
from __future__ import annotations

import math

import pyarrow as pa

from mbolake.stages.engine_parity import compare_rows


def bars(mid: list, vector: list | None = None, order: list | None = None) -> pa.Table:
    order = order or list(range(len(mid)))
    table = pa.table({"bar_ts": pa.array([10 * (i + 1) for i in range(len(mid))], pa.int64()),
                      "mid": pa.array(mid, pa.float64()),
                      "vector": pa.array(vector or [[1.0, float(i)] for i in range(len(mid))], pa.list_(pa.float64()))})
    return table.take(order)


def test_the_same_rows_in_another_order_with_nan_are_equal():
    lake = bars([1.5, math.nan, 2.25])
    assert compare_rows(lake, bars([1.5, math.nan, 2.25], order=[2, 0, 1]), ["bar_ts"]) == (True, "")


def test_one_changed_float_is_named_with_its_keys_and_both_values():
    equal, notes = compare_rows(bars([1.5, 2.0, 2.25]), bars([1.5, 2.0 + 1e-12, 2.25]), ["bar_ts"], "spark")
    assert not equal
    assert notes == "first difference in column mid at row 1 (bar_ts=20): lake 2.0, spark 2.000000000001"


def test_a_null_against_nan_and_a_changed_list_element_differ():
    assert compare_rows(bars([1.0, None]), bars([1.0, math.nan]), ["bar_ts"])[1].startswith(
        "first difference in column mid at row 1 (bar_ts=20): lake None")
    vectors = [[1.0, 0.0], [1.0, math.nan]]
    assert compare_rows(bars([1.0, 2.0], vectors), bars([1.0, 2.0], [[1.0, 0.0], [1.0, math.nan]]), ["bar_ts"])[0]
    equal, notes = compare_rows(bars([1.0, 2.0], vectors), bars([1.0, 2.0], [[1.0, 0.0], [1.0, 3.0]]), ["bar_ts"])
    assert not equal and notes.startswith("first difference in column vector at row 1 (bar_ts=20)")


def test_missing_rows_are_counted_and_the_first_differing_key_named():
    equal, notes = compare_rows(bars([1.0, 2.0, 3.0]), bars([1.0, 3.0], order=[0, 1]).set_column(
        0, "bar_ts", pa.array([10, 30], pa.int64())), ["bar_ts"], "spark")
    assert not equal
    assert notes == ("3 rows in the lake, 2 on spark; first difference in column bar_ts at row 1 (bar_ts=20): "
                     "lake 20, spark 30")
