"""What every Silver and Gold stage shares: the ``Stage`` base, its one summary type, and the
session window (``SilverFilterFirst4Hours``) the feature stages take.

A stage has a name, declared input and output tables, and ``execute(engine, product, ...)``
that states its per-group logic once and leaves reading, grouping and writing to the engine
(``mbolake.engines``). ``run`` validates the parameters before any work, picks the engine
and times the run.
"""
from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field

import pandas as pd

from ..core.calendar import local_time_to_ns
from ..core.products import Product, get_product
from ..engines import Engine, engine_for
from ..runtime.context import Context
from ..runtime.run_record import write_stage_summary
from ..schemas import Table


@dataclass
class StageSummary:
    """What a stage run did: rows in and out, time, the lineage it wrote, a details table
    (per contract-session or per file) and notes worth reading."""

    stage: str
    rows_in: int
    rows_out: int
    seconds: float
    data_version: dict
    details: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list = field(default_factory=list)

    def to_record(self) -> dict:
        """Plain JSON: what ``runs/<run_id>/summaries/<stage>.json`` holds."""
        details = json.loads(self.details.to_json(orient="records", date_format="iso")) if len(self.details) else []
        return {"rows_in": int(self.rows_in), "rows_out": int(self.rows_out), "seconds": round(self.seconds, 3),
                "data_version": self.data_version, "notes": [str(n) for n in self.notes], "details": details}

    def record(self) -> StageSummary:
        """Write this summary into the current run's record (a no-op outside ``mbolake run``)."""
        write_stage_summary(self.stage, self.to_record())
        return self

    def _repr_html_(self) -> str:
        notes = "".join(f"<li>{n}</li>" for n in self.notes)
        return (f"<b>{self.stage}</b>: {self.rows_in:,} rows in → {self.rows_out:,} rows out in {self.seconds:.1f} s; "
                f"lineage {self.data_version}<ul>{notes}</ul>" + self.details.to_html(index=False))


class Stage:
    """A Silver or Gold stage: subclasses set ``name``, ``inputs``, ``outputs`` and ``execute``."""

    name: str = "Stage"
    inputs: tuple[Table, ...] = ()
    outputs: tuple[Table, ...] = ()

    def run(self, ctx: Context, *, underlier: str, start_date: dt.date | None = None,
            end_date: dt.date | None = None, engine: str | None = None, **options) -> StageSummary:
        product = get_product(underlier)
        if start_date and end_date and end_date < start_date:
            raise ValueError(f"{self.name}: end_date {end_date} is before start_date {start_date}")
        t0 = time.perf_counter()
        summary = self.execute(engine_for(ctx, self.name, engine), product, start_date, end_date, **options)
        summary.seconds = time.perf_counter() - t0
        return summary.record()

    def execute(self, engine: Engine, product: Product, start_date, end_date, **options) -> StageSummary:
        raise NotImplementedError

    def summary(self, rows_in: int, rows_out: int, lineage: str, details: pd.DataFrame | None = None,
                notes: list | None = None) -> StageSummary:
        return StageSummary(self.name, rows_in, rows_out, 0.0, json.loads(lineage),
                            pd.DataFrame() if details is None else details, notes or [])


@dataclass(frozen=True)
class SilverFilterFirst4Hours:
    """The session window of the feature stages, ``window_start <= t < window_end`` exchange
    time; by default one hour of pre-RTH context plus three hours of RTH. The stages that use
    it record it in their lineage (``window``), and Gold's ``lookback_spec`` takes it from there."""

    window_start: tuple[int, int] = (8, 30)
    window_end: tuple[int, int] = (12, 30)

    def __post_init__(self):
        if self.window_start >= self.window_end:
            raise ValueError(f"window_start {self.window_start} must be before window_end {self.window_end}")

    def bounds(self, session_date, timezone: str) -> tuple[int, int]:
        return (local_time_to_ns(session_date, *self.window_start, timezone),
                local_time_to_ns(session_date, *self.window_end, timezone))

    def label(self) -> list[str]:
        """``["HH:MM", "HH:MM"]``, as lineage records it."""
        return [f"{h:02d}:{m:02d}" for h, m in (self.window_start, self.window_end)]
