"""Exchange calendars: local time and session (trading) dates from ns UTC timestamps.

Pure numpy + zoneinfo. UTC offsets are looked up once per UTC hour (DST changes fall
on whole UTC hours), so a chunk of millions of timestamps costs one array index.
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np

NS_PER_HOUR = 3_600_000_000_000
NS_PER_DAY = 24 * NS_PER_HOUR
EPOCH = dt.date(1970, 1, 1)


def utc_offsets_ns(ts_ns: np.ndarray, tz: str) -> np.ndarray:
    """The zone's UTC offset (ns) at each timestamp."""
    ts_ns = np.asarray(ts_ns, dtype=np.int64)
    if ts_ns.size == 0:
        return np.zeros(0, dtype=np.int64)
    zone = ZoneInfo(tz)
    hours = ts_ns // NS_PER_HOUR
    first, last = int(hours.min()), int(hours.max())
    if last - first > 24 * 366 * 5:
        uniq, index = np.unique(hours, return_inverse=True)
    else:
        uniq, index = np.arange(first, last + 1), hours - first
    table = np.array(
        [
            int(dt.datetime.fromtimestamp(int(h) * 3600, tz=dt.timezone.utc).astimezone(zone).utcoffset().total_seconds())
            * 1_000_000_000
            for h in uniq
        ],
        dtype=np.int64,
    )
    return table[index]


def local_ns(ts_ns: np.ndarray, tz: str) -> np.ndarray:
    """Wall-clock time in the zone, as ns since the epoch of that wall clock."""
    ts_ns = np.asarray(ts_ns, dtype=np.int64)
    return ts_ns + utc_offsets_ns(ts_ns, tz)


def session_days(ts_ns: np.ndarray, tz: str, session_start_hour: int) -> np.ndarray:
    """Session date of each timestamp as days since 1970-01-01 (int32).

    ``session_start_hour`` is the local hour at which the *next* date's session opens:
    18 for CME (the session for D runs 18:00 New York D-1 to 17:00 D), 0 for the
    calendar date (equities).
    """
    shift = (24 - session_start_hour) % 24 * NS_PER_HOUR
    return ((local_ns(ts_ns, tz) + shift) // NS_PER_DAY).astype(np.int32)


def session_date(ts_ns: int, tz: str, session_start_hour: int) -> dt.date:
    day = int(session_days(np.array([ts_ns], dtype=np.int64), tz, session_start_hour)[0])
    return EPOCH + dt.timedelta(days=day)


def as_date(value) -> dt.date:
    """A date from a ``date``, a ``datetime`` or pandas ``Timestamp`` (its own calendar date), a
    numpy ``datetime64``, or an ISO string (``2026-01-02``, optionally with a time after it).

    The one coercion every layer uses (parameters, kernels, snapshots, splits); anything else
    raises ``ValueError``.
    """
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            raise ValueError("not a date: NaT")
        return EPOCH + dt.timedelta(days=int(value.astype("datetime64[D]").astype(np.int64)))
    text = str(value).strip()
    if len(text) > 10:
        return dt.datetime.fromisoformat(text).date()
    return dt.date.fromisoformat(text)


def days_to_dates(days) -> list[dt.date]:
    return [EPOCH + dt.timedelta(days=int(d)) for d in days]


def local_time_to_ns(day: dt.date, hour: int, minute: int, tz: str) -> int:
    """ns UTC of a wall-clock time on a date in the zone."""
    local = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(tz))
    return int(local.timestamp()) * 1_000_000_000
