"""The ``local`` stage engine: Delta read and written by delta-rs on the driver, one session at a time.

Every Silver and Gold stage runs the same per-group functions (the kernels behind them) on
either engine; only the reading, grouping and writing differ:

- ``spark`` (Databricks, any cluster): Spark reads the inputs, groups them with a shuffle
  and calls the functions through ``applyInArrow``; Spark writes with ``replaceWhere``.
- ``local`` (the embedded default): the driver reads one session's partition at a time
  through delta-rs / pyarrow (partition pruning, no shuffle), splits it by contract, calls
  the same functions and streams their output into one delta-rs ``overwrite ... predicate``
  commit per table.

Why two: on the 2-core machine Spark's shuffle and row conversion dominated. For one 10 M
record session, the order-book stage's quality pass alone (read, shuffle, kernel without
rows, 2.5 s of it in the kernel) took 81 s through Spark; the same pass reads the session
through pyarrow in 3 s. The tables are ordinary Delta tables either way and Spark reads
them (notebooks, the training snapshot, streaming).
"""
from __future__ import annotations

import datetime as dt
import functools
import operator
from collections.abc import Iterable, Iterator, Sequence
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from ..core.prefetch import prefetch
from ..io import delta_tables
from ..runtime import faults
from ..runtime.context import Context
from ..schemas import Table, check_schema
from .base import (
    CONTRACT_SESSION,
    Condition,
    Engine,
    GroupFunction,
    Source,
    key_columns,
    keys_predicate,
    parts_by_output,
)

ROW_GROUP_ROWS = 256 * 1024
TARGET_FILE_BYTES = 64 << 20
# String columns read as Arrow dictionaries: grouping and one-character codes work on the indices.
DICTIONARY_COLUMNS = ("contract_id", "action", "side", "symbol", "venue", "underlier", "instrument_type",
                      "source_file", "ingest_batch_id", "session_phase", "level_type")


class LocalEngine(Engine):
    """Reads a session's partition at a time through pyarrow, groups on the driver, writes
    through delta-rs."""

    name = "local"

    def pinned(self, table: Table) -> "PinnedTable":
        self.pin(table)
        return PinnedTable(self.ctx, table, self.stage, self.versions[table.name])

    def read(self, source: Source, distinct: bool = False) -> pa.Table:
        rows = plain_table(self.pinned(source.table).read(_columns(source), _filter(source)))
        return rows.group_by(rows.column_names).aggregate([]) if distinct else rows

    def group_keys(self, source: Source, by: Sequence[str] = CONTRACT_SESSION) -> pd.DataFrame:
        rows = self.pinned(source.table).read(list(by), _filter(source))
        if tuple(by) == CONTRACT_SESSION:
            return group_keys(rows)
        counts = plain_table(rows).group_by(list(by)).aggregate([([], "count_all")]).to_pandas()
        return counts.rename(columns={"count_all": "rows"}).sort_values(list(by)).reset_index(drop=True)

    def map_groups(self, sources: Sequence[Source], fn: GroupFunction, outputs: Sequence[Table],
                   keys: pd.DataFrame, lineage: str) -> None:
        if keys.empty:
            return
        later: dict[str, list] = {output.name: [] for output in outputs[1:]}

        def first_output_parts():
            for tables in self._groups(sources, keys):
                for output, rows in parts_by_output(fn(*tables), outputs):
                    if output.name == outputs[0].name:
                        yield rows
                    else:
                        later[output.name].append(rows)

        where = keys_predicate(keys)
        replace(self.ctx, outputs[0], first_output_parts(), where, lineage)
        for output in outputs[1:]:
            faults.reach("stage.between_outputs")
            replace(self.ctx, output, later[output.name], where, lineage)

    def collect_groups(self, sources: Sequence[Source], fn: GroupFunction, schema: pa.Schema,
                       keys: pd.DataFrame) -> pa.Table:
        parts = [plain_table(part).select(schema.names).cast(schema)
                 for tables in self._groups(sources, keys) for part in fn(*tables)]
        return pa.concat_tables(parts) if parts else schema.empty_table()

    def replace(self, output: Table, rows: pa.Table, keys: pd.DataFrame, lineage: str) -> None:
        if not keys.empty:
            replace(self.ctx, output, [rows], keys_predicate(keys), lineage)

    def _groups(self, sources: Sequence[Source], keys: pd.DataFrame) -> Iterator[list[pa.Table]]:
        """Every group's rows of each source, a session's partition read at a time. Groups are
        ``session_date`` plus at most one more column (the contract, or the underlier)."""
        split_column = _split_column(keys)
        for session in sorted(keys["session_date"].unique()):
            in_session = keys[keys["session_date"] == session]
            parts = []
            for source in sources:
                source = source.restricted_to(in_session)
                rows = self.pinned(source.table).read(_columns(source), _filter(source))
                parts.append((dict(split_by(rows, split_column)) if split_column else {None: rows},
                              rows.schema.empty_table()))
                del rows
            for value in (sorted(in_session[split_column]) if split_column else [None]):
                # each group's tables are released once its function has run
                yield [found.pop(value, empty) for found, empty in parts]


def _split_column(keys: pd.DataFrame) -> str | None:
    others = [c for c in key_columns(keys) if c != "session_date"]
    if len(others) > 1 or "session_date" not in keys.columns:
        raise ValueError(f"the local engine groups by session_date and at most one more column, "
                         f"got {list(keys.columns)}")
    return others[0] if others else None


def _columns(source: Source) -> list[str] | None:
    return None if source.columns is None else list(source.columns)


def _filter(source: Source, keys: pd.DataFrame | None = None) -> ds.Expression | None:
    """The pyarrow filter of a source's conditions and groups (``keys`` narrows them further)."""
    schema = source.table.schema
    conditions = [_condition(c, schema) for c in source.where]
    for restriction in (source.keys, keys):
        if restriction is not None:
            conditions.append(keys_filter(restriction, schema))
    return all_of(conditions)


def _condition(condition: Condition, schema: pa.Schema) -> ds.Expression:
    field = pc.field(condition.column)
    type_ = schema.field(condition.column).type
    if condition.op == "in":
        return field.isin(pa.array(list(condition.value), type_))
    value = pa.scalar(condition.value, type_)
    return {"==": operator.eq, "!=": operator.ne, ">=": operator.ge, "<=": operator.le}[condition.op](field, value)


def keys_filter(keys: pd.DataFrame, schema: pa.Schema) -> ds.Expression:
    """A pyarrow filter covering exactly the groups of ``keys`` (twin of ``base.keys_predicate``)."""
    columns = key_columns(keys)
    groups = keys[columns].drop_duplicates().itertuples(index=False)
    return _any_of(all_of(pc.field(c) == pa.scalar(v, schema.field(c).type) for c, v in zip(columns, group))
                   for group in groups)


class PinnedTable:
    """A Delta table at the version current when the stage started, read through pyarrow."""

    def __init__(self, ctx: Context, table: Table, needed_by: str, version: int | None = None):
        from deltalake import DeltaTable

        if version is None:
            version = delta_tables.version(ctx.profile, table)
        if version is None:
            raise ValueError(f"{needed_by} needs {table.name}, which does not exist yet under {ctx.profile.lake_root}")
        self.table = table
        self.version = version
        self._uri = delta_tables.table_uri(ctx.profile, table)
        self._delta = DeltaTable(self._uri, version=version,
                                 storage_options=delta_tables.storage_options())

    def dataset(self) -> ds.Dataset:
        dictionary = [c for c in DICTIONARY_COLUMNS if c in self.table.schema.names]
        parquet = ds.ParquetFileFormat(read_options=ds.ParquetReadOptions(dictionary_columns=dictionary))
        if "://" in self._uri and not self._uri.startswith("file://"):
            return self._delta.to_pyarrow_dataset(parquet_read_options=parquet.read_options)
        # A local table is read by pyarrow's own file system: no delta-rs runtime in the read
        # path, so a stage may read while delta-rs is writing (and pulling batches from it).
        actions = pa.table(self._delta.get_add_actions(flatten=True))
        root = self._uri.removeprefix("file://").rstrip("/")
        paths = [f"{root}/{unquote(p)}" for p in actions.column("path").to_pylist()]
        partition_values = [actions.column(f"partition.{c}").to_pylist() for c in self.table.partition_by]
        schema = pa.schema([f.with_type(pa.dictionary(pa.int32(), f.type))
                            if f.name in dictionary and f.name not in self.table.partition_by else f
                            for f in self.table.schema])
        expressions = [_true_if_none(all_of(pc.field(c) == pa.scalar(values[i], schema.field(c).type)
                                            for c, values in zip(self.table.partition_by, partition_values)))
                       for i in range(len(paths))]
        return ds.FileSystemDataset.from_paths(paths, schema=schema, format=parquet,
                                               filesystem=pafs.LocalFileSystem(), partitions=expressions)

    def read(self, columns: list[str] | None = None, where: ds.Expression | None = None) -> pa.Table:
        return self.dataset().to_table(columns=columns, filter=where)


def date_filter(start_date: dt.date | None, end_date: dt.date | None, column: str = "session_date"):
    """A pyarrow filter for ``start_date <= column <= end_date`` (either bound optional), or None."""
    parts = []
    if start_date:
        parts.append(pc.field(column) >= pa.scalar(start_date, pa.date32()))
    if end_date:
        parts.append(pc.field(column) <= pa.scalar(end_date, pa.date32()))
    return all_of(parts)


def _true_if_none(expression: ds.Expression | None) -> ds.Expression:
    return pc.scalar(True) if expression is None else expression


def all_of(conditions: Iterable[ds.Expression | None]) -> ds.Expression | None:
    """AND of the filters given (None ones skipped); None, i.e. no filter, when none is given."""
    present = [cond for cond in conditions if cond is not None]
    return functools.reduce(operator.and_, present) if present else None


def group_keys(table: pa.Table):
    """The distinct ``(contract_id, session_date)`` pairs of ``table`` with their row counts,
    sorted (a pandas frame); counted on dictionary codes and day numbers, no string per row."""
    import pandas as pd

    contract, contracts = category_codes(table.column("contract_id"))
    days = table.column("session_date").cast(pa.int32()).to_numpy()
    if not len(days):
        return pd.DataFrame({"contract_id": [], "session_date": [], "rows": []})
    first, span = int(days.min()), int(days.max() - days.min()) + 1
    counts = np.bincount(contract.astype(np.int64) * span + (days - first), minlength=len(contracts) * span)
    present = np.flatnonzero(counts)
    frame = pd.DataFrame({
        "contract_id": [contracts[i // span] for i in present],
        "session_date": [dt.date(1970, 1, 1) + dt.timedelta(days=first + int(i % span)) for i in present],
        "rows": counts[present].astype(np.int64)})
    return frame.sort_values(["contract_id", "session_date"]).reset_index(drop=True)


def split_by(table: pa.Table, column: str) -> Iterator[tuple[object, pa.Table]]:
    """``(value, rows with that value)`` for every distinct value of a low-cardinality
    ``column``, in value order, keeping the row order inside each part."""
    codes, values = category_codes(table.column(column))
    present = [i for i in np.flatnonzero(np.bincount(codes, minlength=len(values)))]
    for i in sorted(present, key=lambda i: values[i]):
        yield values[i], table if len(present) == 1 else table.filter(pa.array(codes == i))


def plain_column(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A dictionary-encoded column decoded to its value type; any other column unchanged."""
    return column.cast(column.type.value_type) if pa.types.is_dictionary(column.type) else column


def category_codes(column: pa.ChunkedArray) -> tuple[np.ndarray, list]:
    """``(codes, values)`` of a low-cardinality column: ``values[codes[i]]`` is row i's value.

    Works on the dictionary indices chunk by chunk (no string per row); nulls get the code of
    a ``None`` value.
    """
    values: list = []
    position: dict = {}
    parts = [np.zeros(0, np.int32)]
    for chunk in column.chunks:
        encoded = chunk if pa.types.is_dictionary(chunk.type) else pc.dictionary_encode(chunk)
        local = encoded.dictionary.to_pylist() + [None]
        remap = np.array([position.setdefault(v, len(position)) for v in local], dtype=np.int32)
        indices = encoded.indices.fill_null(len(local) - 1).to_numpy()
        parts.append(remap[indices])
    values = sorted(position, key=position.get)
    return np.concatenate(parts), values


def plain_table(table: pa.Table) -> pa.Table:
    """Dictionary-encoded columns decoded to their value type (the contract's types)."""
    return pa.table({name: plain_column(table.column(name)) for name in table.column_names})


def replace(ctx: Context, table: Table, parts: Iterable[pa.Table | pa.RecordBatch], where: str,
            lineage_json: str) -> None:
    """Overwrite the rows matching ``where`` with ``parts`` (streamed) in one Delta commit.

    Every part is checked against the contract before it is written; rows outside ``where``
    fail the commit (delta-rs validates them), so nothing outside the recomputed groups moves.
    """
    from deltalake import CommitProperties, WriterProperties, write_deltalake

    delta_tables.ensure_table(ctx.profile, table)

    def checked():
        for part in produced_in_thread(parts):
            check_schema(table, part.schema)
            for batch in (part.to_batches() if isinstance(part, pa.Table) else [part]):
                # dictionary columns stay encoded (delta-rs writes their values), except partition keys
                yield delta_tables.plain_partition_columns(batch.select(table.schema.names), table)

    batches = checked()
    first = next(batches, None)
    schema = table.schema if first is None else first.schema

    def stream():
        if first is not None:
            yield first
        for batch in batches:
            yield batch if batch.schema == schema else batch.cast(schema)

    write_deltalake(
        delta_tables.table_uri(ctx.profile, table),
        pa.RecordBatchReader.from_batches(schema, stream()),
        mode="overwrite",
        predicate=where,
        partition_by=list(table.partition_by) or None,
        commit_properties=CommitProperties(custom_metadata={"userMetadata": lineage_json}),
        # Bounded row groups and files: a reader filtering by contract skips by their statistics.
        writer_properties=WriterProperties(compression="ZSTD", max_row_group_size=ROW_GROUP_ROWS),
        target_file_size=TARGET_FILE_BYTES,
        storage_options=delta_tables.storage_options(),
    )


def produced_in_thread(parts: Iterable, depth: int = 2) -> Iterator:
    """``parts`` produced on their own thread (see ``mbolake.core.prefetch``): delta-rs pulls the
    batches it writes from inside its runtime, and the producer reads Delta itself."""
    return prefetch(parts, depth, name="mbolake-stage-producer")


def read_rows(ctx: Context, table: Table, where: ds.Expression | None = None,
              columns: list[str] | None = None, version: int | None = None) -> pa.Table:
    """Rows of ``table`` at ``version`` (default: current; plain types), e.g. to summarise what a stage wrote."""
    return plain_table(PinnedTable(ctx, table, "a stage summary", version).read(columns, where))


def _any_of(conditions: Iterable[ds.Expression]) -> ds.Expression:
    """OR of the filters; matches nothing when none is given."""
    return functools.reduce(operator.or_, conditions, pc.scalar(False))


def arrow_rows(pdf, table: Table) -> pa.Table:
    """A pandas frame -> Arrow rows in the contract's column order and types."""
    return pa.Table.from_pandas(pdf[table.schema.names], schema=table.schema, preserve_index=False)
