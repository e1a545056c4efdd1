"""Engine parity's row comparison without an engine: order does not matter, NaN equals NaN,
null never equals a value, nested values are compared element by element, and the first
difference is named by its row keys; a table without rows on either side is "empty", no pass,
and only a difference fails the check."""
from __future__ import annotations

import datetime as dt
import math

import pyarrow as pa
import pytest

from mbolake.stages.engine_parity import EngineParity, TableParity, compare_rows


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


NO_BARS = bars([1.0]).slice(0, 0)


def parity_of(*tables: TableParity) -> EngineParity:
    return EngineParity(dt.date(2025, 11, 11), "local", "spark", 1_000, list(tables))


def table_parity(name: str, lake: pa.Table, other: pa.Table) -> TableParity:
    equal, notes = compare_rows(lake, other, ["bar_ts"], "spark")
    return TableParity("SilverComputeBar5sFeatures", name, equal, lake.num_rows, other.num_rows, notes)


def test_a_table_without_rows_on_either_side_is_empty_not_equal():
    empty = table_parity("gold.labels", NO_BARS, NO_BARS)
    assert (empty.status, empty.equal) == ("empty", False)
    assert empty.notes == "no rows of the session on either side: nothing compared"
    parity = parity_of(table_parity("silver.bar_5s", bars([1.5, 2.0]), bars([1.5, 2.0])), empty)
    assert (parity.status, parity.equal, parity.different) == ("empty", False, [])
    assert parity.assert_no_difference() is parity  # nothing differs: the notebook goes on
    record = parity.to_record()
    assert (record["equal"], record["status"]) == (False, "empty")
    assert [(d["table"], d["status"], d["equal"], d["rows"]) for d in record["details"]] == [
        ("silver.bar_5s", "equal", True, 2), ("gold.labels", "empty", False, 0)]
    assert record["notes"][0].endswith("1/2 tables equal, 1 empty")
    assert not parity_of().equal and parity_of().status == "empty"  # no table at all is no pass either


def test_a_difference_is_different_and_fails_the_assertion_naming_it():
    lake = bars([1.5, 2.0, 2.25])
    parity = parity_of(table_parity("silver.bar_5s", lake, bars([1.5, 2.5, 2.25])),
                       table_parity("gold.labels", NO_BARS, bars([1.0])))
    assert [t.status for t in parity.tables] == ["different", "different"]  # 0 rows in the lake, 1 on spark
    assert (parity.status, parity.equal, parity.to_record()["status"]) == ("different", False, "different")
    with pytest.raises(AssertionError) as failure:
        parity.assert_no_difference()
    assert str(failure.value) == (
        "engine parity, session 2025-11-11: local (the lake) and spark differ in silver.bar_5s: first difference in "
        "column mid at row 1 (bar_ts=20): lake 2.0, spark 2.5; gold.labels: 0 rows in the lake, 1 on spark")
    equal = parity_of(table_parity("silver.bar_5s", lake, lake))
    assert (equal.status, equal.equal, equal.to_record()["details"][0]["status"]) == ("equal", True, "equal")
