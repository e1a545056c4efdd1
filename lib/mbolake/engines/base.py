"""The stage engine interface: how a stage reads its inputs, runs its per-group function and
writes its outputs, independent of where that happens.

A stage states its logic once, as a function of one group's rows (a contract-session, or
a session); an engine does the rest:

- **pin** every input table at its version when the stage starts (lineage records it);
- **read** small selections to the driver (``read``) or list the groups present
  (``group_keys``);
- **map_groups**: call the per-group function on every group of ``keys`` with that group's
  rows of each source (Arrow tables; string columns may arrive dictionary-encoded) and
  replace exactly those groups in the output tables;
- **collect_groups**: the same, with the function's small results gathered on the driver;
- **replace** the rows of some groups with rows computed on the driver.

Selections are engine-neutral (``Source`` with ``Condition``s), so ``local`` turns them into
pyarrow filters and ``spark`` into column expressions; a streaming engine keeping state per
contract implements the same four operations over micro-batches.
"""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa

from ..runtime.context import Context
from ..schemas import Table

CONTRACT_SESSION = ("contract_id", "session_date")
OPERATORS = ("==", "!=", ">=", "<=", "in")


@dataclass(frozen=True)
class Condition:
    """``column op value``; ``in`` takes a tuple of values."""

    column: str
    op: str
    value: object

    def __post_init__(self):
        if self.op not in OPERATORS:
            raise ValueError(f"condition operator must be one of {OPERATORS}, got {self.op!r}")


def where(**equal) -> tuple[Condition, ...]:
    """Equality conditions from keyword arguments: ``where(underlier="ES", is_front_month=True)``."""
    return tuple(Condition(column, "==", value) for column, value in equal.items())


def in_dates(start_date=None, end_date=None, column: str = "session_date") -> tuple[Condition, ...]:
    """``start_date <= column <= end_date``, either bound optional."""
    return tuple(Condition(column, op, bound) for op, bound in ((">=", start_date), ("<=", end_date)) if bound)


@dataclass(frozen=True, eq=False)
class Source:
    """A selection of one pinned input: its columns (None = all), conditions and, optionally,
    only the groups listed in ``keys`` (a frame of the grouping columns)."""

    table: Table
    columns: Sequence[str] | None = None
    where: tuple[Condition, ...] = ()
    keys: pd.DataFrame | None = None

    def restricted_to(self, keys: pd.DataFrame) -> "Source":
        """Only the groups of ``keys``, with their grouping columns among the columns read."""
        columns = self.columns
        if columns is not None:
            columns = [*columns, *(c for c in key_columns(keys) if c not in columns)]
        return Source(self.table, columns, self.where, keys)


GroupFunction = Callable[..., Iterable]
"""``fn(*tables)`` for one group, one Arrow table per source. With one output it yields Arrow
tables of that output; with several it yields ``(output Table, rows)`` pairs."""


@dataclass
class Engine(ABC):
    """One stage run's view of the lake: inputs pinned at the versions read first."""

    ctx: Context
    stage: str
    versions: dict[str, int] = field(default_factory=dict)
    name = "abstract"

    def pin(self, *tables: Table) -> None:
        """Pin ``tables`` at their current versions; a missing table fails naming the stage."""
        for table in tables:
            if table.name not in self.versions:
                self.versions[table.name] = self._current_version(table)

    def lineage(self, **facts) -> str:
        """Lineage of every output row: the pinned input versions, the code version and any
        facts the stage adds (e.g. its session window), as JSON."""
        return json.dumps({"inputs": dict(self.versions), "code_version": self.ctx.code_version, **facts},
                          sort_keys=True)

    def _current_version(self, table: Table) -> int:
        from ..io import delta_tables

        version = delta_tables.version(self.ctx.profile, table)
        if version is None:
            raise ValueError(f"{self.stage} needs {table.name}, which does not exist yet under "
                             f"{self.ctx.profile.lake_root}")
        return version

    @abstractmethod
    def read(self, source: Source, distinct: bool = False) -> pa.Table:
        """The selected rows on the driver (plain Arrow types); ``distinct`` drops repeats."""

    @abstractmethod
    def group_keys(self, source: Source, by: Sequence[str] = CONTRACT_SESSION) -> pd.DataFrame:
        """The groups present in ``source``: the ``by`` columns and ``rows``, sorted."""

    @abstractmethod
    def map_groups(self, sources: Sequence[Source], fn: GroupFunction, outputs: Sequence[Table],
                   keys: pd.DataFrame, lineage: str) -> None:
        """``fn`` over every group of ``keys`` (grouped by ``keys``' columns but ``rows``);
        its rows replace exactly those groups in ``outputs``, one commit per output."""

    @abstractmethod
    def collect_groups(self, sources: Sequence[Source], fn: GroupFunction, schema: pa.Schema,
                       keys: pd.DataFrame) -> pa.Table:
        """``fn`` over every group of ``keys``; its (small) results gathered on the driver."""

    @abstractmethod
    def replace(self, output: Table, rows: pa.Table, keys: pd.DataFrame, lineage: str) -> None:
        """Replace the groups of ``keys`` in ``output`` with ``rows`` (one commit)."""


def key_columns(keys: pd.DataFrame) -> list[str]:
    return [c for c in keys.columns if c != "rows"]


def keys_predicate(keys: pd.DataFrame) -> str:
    """A SQL predicate covering exactly the groups of ``keys`` (delta-rs and Spark read it alike)."""
    columns = key_columns(keys)
    groups = keys[columns].drop_duplicates().itertuples(index=False)
    return " OR ".join("(" + " AND ".join(f"{c} = {_sql_literal(v)}" for c, v in zip(columns, group)) + ")"
                       for group in groups)


def _sql_literal(value) -> str:
    import datetime as dt

    if isinstance(value, dt.date):
        return f"DATE'{value}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def parts_by_output(parts: Iterable, outputs: Sequence[Table]) -> Iterable[tuple[Table, pa.Table]]:
    """A group function's parts as ``(output, rows)`` pairs (a single output's parts are bare tables)."""
    for part in parts:
        yield (outputs[0], part) if len(outputs) == 1 else part
