"""Engine parity: the Silver and Gold stages of one session re-run on the other engine in a
scratch lake, their rows compared with the lake's, row for row.

The lake was built on one engine (``local`` on the embedded default, ``spark`` on a
cluster). For one session (by default the last one of the selection in
``silver.book_quality``) the session's Bronze rows are copied verbatim into a lake under a
temporary folder, the six stages run there on the other engine, and every output table's
rows of that session are compared with the lake's: same row count, same values in every
column but ``data_version`` (the lineage names table versions, which differ between two
lakes). Floats are compared exactly, NaN equal to NaN: both engines call the same kernels
on the same rows in the same order, so any difference is a bug, not rounding. Each table's
``status`` is ``equal`` (rows on both sides, all equal), ``different`` or ``empty`` (no rows
of the session on either side: nothing was compared, which is no pass); ``EngineParity.equal``
holds only when every table is ``equal``, and notebook 39 fails when one is ``different``.
The lake is only read; the scratch lake is deleted afterwards. ``record()`` writes
``summaries/engine_parity.json`` (one entry per table) for the validation report.
"""
from __future__ import annotations

import datetime as dt
import math
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from ..core.calendar import as_date
from ..core.products import get_product
from ..engines import ENGINES, Condition, Source, engine_for, stage_engine, where
from ..io import delta_tables
from ..runtime import run_record
from ..runtime.config import Profile
from ..runtime.context import Context
from ..schemas import (
    BAR_5S,
    BOOK_QUALITY,
    BRONZE_MBO,
    FEATURE_PRIMITIVES,
    INGEST_MANIFEST,
    LABELS,
    MBO_NORMALIZED,
    ORDERBOOK_STATE,
    SESSION_LEVELS,
    SETUP_VECTORS,
    TRAINING_VIEW,
    Table,
)
from .base import SilverFilterFirst4Hours
from .gold_setup import GoldExtractSetupVectors
from .silver_approach import SilverExtractLevelApproach2m
from .silver_bars import SilverComputeBar5sFeatures
from .silver_book import SilverRebuildOrderBook
from .silver_levels import SilverAddSessionLevels
from .silver_normalize import SilverNormalizeMBO

SUMMARY_NAME = "engine_parity"  # runs/<run_id>/summaries/engine_parity.json
IGNORED = ("data_version",)
# The rows' order for the comparison (the remaining columns break any tie).
ROW_KEYS = {ORDERBOOK_STATE: ["contract_id", "ts_recv", "sequence"], BOOK_QUALITY: ["contract_id", "session_date"],
            MBO_NORMALIZED: ["session_date", "record_index"], SESSION_LEVELS: ["contract_id", "session_date"],
            BAR_5S: ["contract_id", "session_date", "bar_ts"], FEATURE_PRIMITIVES: ["episode_id", "position"],
            SETUP_VECTORS: ["episode_id"], LABELS: ["episode_id"], TRAINING_VIEW: ["episode_id"]}


@dataclass
class TableParity:
    stage: str
    table: str
    equal: bool
    rows: int  # the lake's rows of the session
    other_rows: int  # the other engine's
    notes: str = ""
    status: str = field(init=False)  # equal | different | empty (table_status)

    def __post_init__(self) -> None:  # ``equal`` in: the rows compared equal; out: and there were rows
        self.status = table_status(self.equal, self.rows, self.other_rows)
        self.equal = self.status == "equal"
        if self.status == "empty" and not self.notes:
            self.notes = "no rows of the session on either side: nothing compared"


def table_status(rows_equal: bool, rows: int, other_rows: int) -> str:
    """``empty`` when neither side has a row, else ``equal`` or ``different``."""
    if rows == 0 and other_rows == 0:
        return "empty"
    return "equal" if rows_equal else "different"


@dataclass
class EngineParity:
    session_date: dt.date
    lake_engine: str
    other_engine: str
    bronze_rows: int
    tables: list[TableParity] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def equal(self) -> bool:
        """Every table compared rows and found them equal (an empty table is not a pass)."""
        return bool(self.tables) and all(t.status == "equal" for t in self.tables)

    @property
    def different(self) -> list[TableParity]:
        return [t for t in self.tables if t.status == "different"]

    @property
    def empty(self) -> list[TableParity]:
        return [t for t in self.tables if t.status == "empty"]

    @property
    def status(self) -> str:
        """``different`` if a table differs, else ``equal`` if every table is equal, else ``empty``."""
        if self.different:
            return "different"
        return "equal" if self.equal else "empty"

    def assert_no_difference(self) -> EngineParity:
        """Raise naming every table that differs (what fails notebook 39, and so the run); empty tables do not."""
        if self.different:
            raise AssertionError(f"engine parity, session {self.session_date}: {self.lake_engine} (the lake) and "
                                 f"{self.other_engine} differ in "
                                 + "; ".join(f"{t.table}: {t.notes}" for t in self.different))
        return self

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(t) for t in self.tables], columns=[f for f in TableParity.__dataclass_fields__])

    def to_record(self) -> dict:
        """What ``summaries/engine_parity.json`` holds: one ``details`` entry per table."""
        unequal = [t for t in self.tables if not t.equal]
        notes = [f"session {self.session_date}: {self.lake_engine} (the lake) against {self.other_engine} (scratch), "
                 f"{len(self.tables) - len(unequal)}/{len(self.tables)} tables equal"
                 + (f", {len(self.empty)} empty" if self.empty else "")]
        notes += [f"{t.table} ({t.status}): {t.notes}" for t in unequal]
        return {"equal": self.equal, "status": self.status, "session_date": self.session_date.isoformat(),
                "engines": [self.lake_engine, self.other_engine], "rows_in": self.bronze_rows,
                "rows_out": sum(t.rows for t in self.tables), "seconds": round(self.seconds, 3), "notes": notes, "details": [asdict(t) for t in self.tables]}

    def record(self) -> EngineParity:
        """Write ``summaries/engine_parity.json`` of the current run (a no-op outside ``mbolake run``)."""
        run_record.write_stage_summary(SUMMARY_NAME, self.to_record())
        return self

    def _repr_html_(self) -> str:
        verdict = {"equal": "equal", "different": "NOT EQUAL", "empty": "EMPTY (nothing compared)"}[self.status]
        return (f"<b>engine parity</b>, session {self.session_date}: {self.lake_engine} vs {self.other_engine}: "
                f"<b>{verdict}</b> ({self.bronze_rows:,} Bronze rows, {self.seconds:.1f} s)"
                + self.frame().to_html(index=False))


def check_engine_parity(
    ctx: Context,
    *,
    underlier: str = "ES",
    session_date: dt.date | str | None = None,
    start_date: dt.date | None = None,
    end_date: dt.date | None = None,
    lake_engine: str | None = None,
    window: SilverFilterFirst4Hours = SilverFilterFirst4Hours(),
    roll_threshold: float = 0.6,
    include_spreads: bool = False,
    scratch_dir: str | Path | None = None,
) -> EngineParity:
    """Re-run the Silver and Gold stages of one session on the engine the lake was not built
    with and compare their rows with the lake's (see the module's docstring). The stage
    options must be the ones the lake was built with. The scratch lake goes under
    ``scratch_dir`` (default: the system's temporary folder), which the other engine must
    reach: on a cluster, a folder on shared storage."""
    product = get_product(underlier)
    lake_engine = stage_engine(ctx, lake_engine)
    other = next(e for e in ENGINES if e != lake_engine)
    session = as_date(session_date) if session_date else last_session(ctx, start_date, end_date, product.underlier)
    t0 = time.perf_counter()
    stages = [(SilverRebuildOrderBook(), {"include_spreads": include_spreads}),
              (SilverNormalizeMBO(roll_threshold), {"include_spreads": include_spreads}),
              (SilverAddSessionLevels(), {}), (SilverComputeBar5sFeatures(window), {}),
              (SilverExtractLevelApproach2m(window), {}), (GoldExtractSetupVectors(), {})]
    bronze = read_session(ctx, BRONZE_MBO, session, where(underlier=product.underlier))
    if not bronze.num_rows:
        raise ValueError(f"engine parity: no {underlier} Bronze rows for session {session}")
    with tempfile.TemporaryDirectory(prefix="engine_parity_", dir=scratch_dir) as folder:
        scratch = Context(profile=scratch_profile(ctx.profile, Path(folder)))
        if other == "spark":
            scratch.__dict__["spark"] = ctx.spark  # the process's session; the scratch tables are read by path
        delta_tables.append(scratch.profile, BRONZE_MBO, bronze.select(BRONZE_MBO.schema.names).cast(BRONZE_MBO.schema))
        contracts = tuple(sorted(set(bronze.column("contract_id").to_pylist())))
        bronze_rows = bronze.num_rows
        del bronze
        with run_record.suspended():  # the scratch runs' summaries are not the run's
            for stage, options in stages:
                stage.run(scratch, underlier=underlier, start_date=session, end_date=session, engine=other, **options)
        tables = [compare_session(ctx, scratch, type(stage).__name__, table, session, contracts, other)
                  for stage, _ in stages for table in stage.outputs]
    return EngineParity(session, lake_engine, other, bronze_rows, tables, time.perf_counter() - t0)


def last_session(ctx: Context, start_date: dt.date | None = None, end_date: dt.date | None = None,
                 underlier: str | None = None) -> dt.date:
    """The last session between the dates (either optional) that has Silver rows
    (``silver.book_quality``) and, with ``underlier``, Bronze files of that product landed."""
    dates = {d for d in delta_tables.read(ctx.profile, BOOK_QUALITY, ["session_date"]).column(0).to_pylist()
             if (start_date is None or d >= start_date) and (end_date is None or d <= end_date)}
    if underlier is not None:
        manifest = delta_tables.read(ctx.profile, INGEST_MANIFEST, ["underlier", "status", "session_dates"]).to_pylist()
        dates &= {d for row in manifest if row["underlier"] == underlier and row["status"] == "ingested"
                  for d in row["session_dates"] or []}
    if not dates:
        raise ValueError(f"engine parity: no session {'of ' + underlier + ' ' if underlier else ''}with Silver rows "
                         f"between {start_date} and {end_date}; run the Silver and Gold stages first")
    return max(dates)


def scratch_profile(profile: Profile, folder: Path) -> Profile:
    """The lake's profile with its lake under ``folder`` (the rest, code version included, unchanged)."""
    return Profile(profile.name, profile.root, {**profile.settings, "lake_root": str(folder / "lake")})


def read_session(ctx: Context, table: Table, session: dt.date, conditions: tuple[Condition, ...] = (),
                 columns: list[str] | None = None) -> pa.Table:
    """One session's rows of ``table`` (empty when the table does not exist)."""
    if not delta_tables.exists(ctx.profile, table):
        return table.schema.empty_table() if columns is None else table.schema.empty_table().select(columns)
    engine = engine_for(ctx, "EngineParity", "local")  # pyarrow with partition pruning, whatever wrote the table
    return engine.read(Source(table, columns, where(session_date=session) + conditions))


def compare_session(lake: Context, scratch: Context, stage: str, table: Table, session: dt.date,
                    contracts: tuple[str, ...], other: str) -> TableParity:
    columns = [c for c in table.schema.names if c not in IGNORED]
    mine = (Condition("contract_id", "in", contracts),) if "contract_id" in columns and contracts else ()
    expected = read_session(lake, table, session, mine, columns)
    got = read_session(scratch, table, session, (), columns)
    equal, notes = compare_rows(expected, got, ROW_KEYS[table], other)
    return TableParity(stage, table.name, equal, expected.num_rows, got.num_rows, notes)


def compare_rows(expected: pa.Table, got: pa.Table, keys: list[str], other: str = "other") -> tuple[bool, str]:
    """``(equal, the first difference)`` of two tables with the same columns, each sorted by
    ``keys`` and then by its other flat columns."""
    expected, got = sort_rows(expected, keys), sort_rows(got.select(expected.column_names), keys)
    notes = []
    if expected.num_rows != got.num_rows:
        notes.append(f"{expected.num_rows:,} rows in the lake, {got.num_rows:,} on {other}")
    n = min(expected.num_rows, got.num_rows)
    expected, got = expected.slice(0, n), got.slice(0, n)
    for name in [*keys, *(c for c in expected.column_names if c not in keys)]:
        row = first_difference(expected.column(name), got.column(name))
        if row is not None:
            at = ", ".join(f"{k}={expected.column(k)[row].as_py()}" for k in keys)
            notes.append(f"first difference in column {name} at row {row} ({at}): lake "
                         f"{_short(expected.column(name)[row].as_py())}, {other} {_short(got.column(name)[row].as_py())}")
            break
    return not notes, "; ".join(notes)


def sort_rows(rows: pa.Table, keys: list[str]) -> pa.Table:
    flat = [f.name for f in rows.schema if not pa.types.is_nested(f.type) and f.name not in keys]
    return rows.sort_by([(c, "ascending") for c in [*keys, *flat]]) if rows.num_rows else rows


def first_difference(a: pa.ChunkedArray, b: pa.ChunkedArray) -> int | None:
    """The first index where two equally long columns differ (nulls equal nulls, NaN equals NaN)."""
    if a.equals(b):
        return None
    a, b = a.combine_chunks(), b.combine_chunks()
    if pa.types.is_nested(a.type):
        return next((i for i, (x, y) in enumerate(zip(a.to_pylist(), b.to_pylist())) if not same_value(x, y)), None)
    null_a, null_b = a.is_null().to_numpy(zero_copy_only=False), b.is_null().to_numpy(zero_copy_only=False)
    x, y = a.to_numpy(zero_copy_only=False), b.to_numpy(zero_copy_only=False)
    differ = null_a != null_b
    both = ~null_a & ~null_b
    values_differ = x != y
    if np.issubdtype(x.dtype, np.floating) and np.issubdtype(y.dtype, np.floating):
        values_differ &= ~(np.isnan(x) & np.isnan(y))
    differ |= both & values_differ
    found = np.flatnonzero(differ)
    return int(found[0]) if found.size else None


def same_value(x, y) -> bool:
    if isinstance(x, float) and isinstance(y, float):
        return x == y or (math.isnan(x) and math.isnan(y))
    if isinstance(x, list) and isinstance(y, list):
        return len(x) == len(y) and all(same_value(i, j) for i, j in zip(x, y))
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(same_value(x[k], y[k]) for k in x)
    return x == y


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
