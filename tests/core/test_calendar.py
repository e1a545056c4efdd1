"""Session dates and UTC offsets around the 2025 US DST changes (America/New_York).

2025-03-09 02:00 EST -> 03:00 EDT happens at 07:00 UTC; 2025-11-02 02:00 EDT -> 01:00 EST
happens at 06:00 UTC. Expected instants are written in UTC by hand, not via the module.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from mbolake.core.calendar import (
    NS_PER_HOUR,
    as_date,
    days_to_dates,
    local_ns,
    local_time_to_ns,
    session_date,
    session_days,
    utc_offsets_ns,
)

NY = "America/New_York"
UTC = dt.timezone.utc


def utc_ns(y, mo, d, h, mi=0, s=0, ns=0) -> int:
    return int(dt.datetime(y, mo, d, h, mi, s, tzinfo=UTC).timestamp()) * 1_000_000_000 + ns


# (UTC instant, local wall time for the record, expected CME session date)
CME_CASES = [
    # before the March change (EST, UTC-5): Friday 2025-03-07
    (utc_ns(2025, 3, 7, 22, 59), "Fri 03-07 17:59 EST", dt.date(2025, 3, 7)),
    (utc_ns(2025, 3, 7, 23, 0), "Fri 03-07 18:00 EST", dt.date(2025, 3, 8)),
    # the Sunday of the change: the evening open (18:00 EDT = 22:00 UTC) is Monday's session
    (utc_ns(2025, 3, 9, 21, 59), "Sun 03-09 17:59 EDT", dt.date(2025, 3, 9)),
    (utc_ns(2025, 3, 9, 22, 0), "Sun 03-09 18:00 EDT", dt.date(2025, 3, 10)),
    # after the March change (EDT, UTC-4): Monday 2025-03-10
    (utc_ns(2025, 3, 10, 21, 59), "Mon 03-10 17:59 EDT", dt.date(2025, 3, 10)),
    (utc_ns(2025, 3, 10, 22, 0), "Mon 03-10 18:00 EDT", dt.date(2025, 3, 11)),
    # before the November change (EDT): Friday 2025-10-31
    (utc_ns(2025, 10, 31, 21, 59), "Fri 10-31 17:59 EDT", dt.date(2025, 10, 31)),
    (utc_ns(2025, 10, 31, 22, 0), "Fri 10-31 18:00 EDT", dt.date(2025, 11, 1)),
    # the Sunday of the change (now EST): the open is at 23:00 UTC and belongs to Monday 11-03
    (utc_ns(2025, 11, 2, 22, 59), "Sun 11-02 17:59 EST", dt.date(2025, 11, 2)),
    (utc_ns(2025, 11, 2, 23, 0), "Sun 11-02 18:00 EST", dt.date(2025, 11, 3)),
    # the same UTC instant as a summer-time open is still 17:00 local in winter: not yet open
    (utc_ns(2025, 11, 2, 22, 0), "Sun 11-02 17:00 EST", dt.date(2025, 11, 2)),
    # after the November change (EST): Monday 2025-11-03
    (utc_ns(2025, 11, 3, 22, 59, 59, 999_999_999), "Mon 11-03 17:59:59.999999999 EST", dt.date(2025, 11, 3)),
    (utc_ns(2025, 11, 3, 23, 0), "Mon 11-03 18:00 EST", dt.date(2025, 11, 4)),
    # the repeated hour 01:00-02:00 on 11-02 (both EDT and EST): both are the 11-02 session
    (utc_ns(2025, 11, 2, 5, 30), "Sun 11-02 01:30 EDT", dt.date(2025, 11, 2)),
    (utc_ns(2025, 11, 2, 6, 30), "Sun 11-02 01:30 EST", dt.date(2025, 11, 2)),
]


@pytest.mark.parametrize("ts, label, expected", CME_CASES, ids=[c[1] for c in CME_CASES])
def test_cme_session_date(ts, label, expected):
    assert session_date(ts, NY, 18) == expected


def test_cme_session_days_vectorised_matches_scalar():
    ts = np.array([c[0] for c in CME_CASES], dtype=np.int64)
    days = session_days(ts, NY, 18)
    assert days.dtype == np.int32
    assert days_to_dates(days) == [c[2] for c in CME_CASES]


EQUITY_CASES = [
    # hour 0: the calendar date in New York
    (utc_ns(2025, 3, 8, 4, 59), dt.date(2025, 3, 7)),  # 23:59 EST
    (utc_ns(2025, 3, 8, 5, 0), dt.date(2025, 3, 8)),  # 00:00 EST
    (utc_ns(2025, 3, 10, 3, 59), dt.date(2025, 3, 9)),  # 23:59 EDT
    (utc_ns(2025, 3, 10, 4, 0), dt.date(2025, 3, 10)),  # 00:00 EDT
    (utc_ns(2025, 11, 2, 3, 59), dt.date(2025, 11, 1)),  # 23:59 EDT
    (utc_ns(2025, 11, 2, 4, 0), dt.date(2025, 11, 2)),  # 00:00 EDT
    (utc_ns(2025, 11, 4, 4, 59), dt.date(2025, 11, 3)),  # 23:59 EST
    (utc_ns(2025, 11, 4, 5, 0), dt.date(2025, 11, 4)),  # 00:00 EST
    (utc_ns(2025, 11, 3, 14, 30), dt.date(2025, 11, 3)),  # 09:30 EST, the open
    (utc_ns(2025, 11, 3, 23, 0), dt.date(2025, 11, 3)),  # 18:00 EST is still the same date
]


@pytest.mark.parametrize("ts, expected", EQUITY_CASES)
def test_equity_session_date_is_the_local_calendar_date(ts, expected):
    assert session_date(ts, NY, 0) == expected


def test_utc_offsets_across_the_march_change_in_one_array():
    change = utc_ns(2025, 3, 9, 7)  # 02:00 EST == 03:00 EDT
    ts = np.array([change - 3 * NS_PER_HOUR, change - 1, change, change + 1, change + 5 * NS_PER_HOUR])
    offsets = utc_offsets_ns(ts, NY)
    h = NS_PER_HOUR
    assert offsets.tolist() == [-5 * h, -5 * h, -4 * h, -4 * h, -4 * h]
    assert local_ns(ts, NY).tolist() == (ts + offsets).tolist()
    # 06:59:59.999999999 UTC is 01:59:59.999999999 local; one ns later is 03:00 local
    assert local_ns(np.array([change - 1, change]), NY).tolist() == [
        utc_ns(2025, 3, 9, 1, 59, 59, 999_999_999),
        utc_ns(2025, 3, 9, 3, 0),
    ]


def test_utc_offsets_across_the_november_change_unsorted():
    change = utc_ns(2025, 11, 2, 6)  # 02:00 EDT == 01:00 EST
    ts = np.array([change + NS_PER_HOUR, change - 1, change, change - 10 * NS_PER_HOUR])
    h = NS_PER_HOUR
    assert utc_offsets_ns(ts, NY).tolist() == [-5 * h, -4 * h, -5 * h, -4 * h]


def test_utc_offsets_far_apart_timestamps_use_the_sparse_path():
    # more than five years apart: looked up per distinct hour rather than as a dense range
    ts = np.array([utc_ns(2015, 7, 1, 12), utc_ns(2025, 1, 15, 12), utc_ns(2015, 1, 15, 12)], dtype=np.int64)
    h = NS_PER_HOUR
    assert utc_offsets_ns(ts, NY).tolist() == [-4 * h, -5 * h, -5 * h]


def test_utc_offsets_empty_and_other_zones():
    assert utc_offsets_ns(np.array([], dtype=np.int64), NY).shape == (0,)
    assert utc_offsets_ns(np.array([utc_ns(2025, 7, 1, 0)]), "UTC").tolist() == [0]
    assert utc_offsets_ns(np.array([utc_ns(2025, 7, 1, 0)]), "Europe/Berlin").tolist() == [2 * NS_PER_HOUR]


@pytest.mark.parametrize(
    "day, hour, minute, expected",
    [
        (dt.date(2025, 3, 7), 18, 0, utc_ns(2025, 3, 7, 23, 0)),
        (dt.date(2025, 3, 10), 18, 0, utc_ns(2025, 3, 10, 22, 0)),
        (dt.date(2025, 11, 3), 4, 30, utc_ns(2025, 11, 3, 9, 30)),
        (dt.date(2025, 10, 31), 9, 30, utc_ns(2025, 10, 31, 13, 30)),
        (dt.date(2025, 11, 2), 18, 0, utc_ns(2025, 11, 2, 23, 0)),
    ],
)
def test_local_time_to_ns(day, hour, minute, expected):
    ns = local_time_to_ns(day, hour, minute, NY)
    assert ns == expected
    assert isinstance(ns, int)


def test_local_time_to_ns_round_trips_through_local_ns():
    ns = local_time_to_ns(dt.date(2025, 11, 3), 13, 0, NY)
    assert int(local_ns(np.array([ns]), NY)[0]) == utc_ns(2025, 11, 3, 13, 0)
    assert session_date(ns, NY, 18) == dt.date(2025, 11, 3)


def test_days_to_dates():
    assert days_to_dates(np.array([0, 20390], dtype=np.int32)) == [dt.date(1970, 1, 1), dt.date(2025, 10, 29)]


@pytest.mark.parametrize("value", [
    dt.date(2025, 11, 3), dt.datetime(2025, 11, 3, 23, 59), "2025-11-03", " 2025-11-03 ", "2025-11-03 09:30:00",
    "2025-11-03T09:30:00+00:00", np.datetime64("2025-11-03"), np.datetime64("2025-11-03T23:00:00.000000001"),
])
def test_as_date_takes_dates_datetimes_datetime64_and_iso_strings(value):
    import pandas as pd

    assert as_date(value) == dt.date(2025, 11, 3)
    if not isinstance(value, str):
        assert as_date(pd.Timestamp(value)) == dt.date(2025, 11, 3)


@pytest.mark.parametrize("value", ["2025-13-01", "2025-11-03garbage", "", None, np.datetime64("NaT")])
def test_as_date_rejects_what_is_not_a_date(value):
    with pytest.raises(ValueError):
        as_date(value)
