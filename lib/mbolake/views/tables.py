"""How views read: the Delta table pinned at its current version and read through pyarrow with
filters (``mbolake.engines.local.PinnedTable``, as the stages read), then pandas; times in the
product's exchange time zone."""
from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..core.calendar import as_date
from ..core.products import product_of_contract
from ..engines.local import PinnedTable, all_of, plain_table
from ..schemas import Table


def pinned(ctx, table: Table, needed_by: str, version: int | None = None) -> PinnedTable:
    """``table`` at ``version`` (default: its current one); a clear ``ValueError`` when it does not exist yet."""
    return PinnedTable(ctx, table, needed_by, version)


def read_frame(ctx, table: Table, columns: list[str] | None = None, where=None,
               needed_by: str = "this view") -> pd.DataFrame:
    """Rows of ``table`` (plain types, as pandas) matching the pyarrow filter ``where``."""
    return plain_table(pinned(ctx, table, needed_by).read(columns, where)).to_pandas()


def one_session(contract_id: str, session_date, *more):
    """A pyarrow filter for one contract-session (and any further conditions)."""
    return all_of([pc.field("contract_id") == contract_id,
                   pc.field("session_date") == pa.scalar(as_date(session_date), pa.date32()), *more])


def contract_timezone(contract_id: str) -> str:
    """The exchange time zone of a contract's product."""
    return product_of_contract(contract_id).timezone


def local_times(ns, timezone: str):
    """ns UTC (a scalar or a Series) as wall-clock time in ``timezone``."""
    stamps = pd.to_datetime(ns, unit="ns", utc=True)
    return stamps.dt.tz_convert(timezone) if isinstance(stamps, pd.Series) else stamps.tz_convert(timezone)


def time_label(timezone: str) -> str:
    """Axis title for times in ``timezone``: ``New York time`` for America/New_York."""
    return f"{timezone.rsplit('/', 1)[-1].replace('_', ' ')} time"
