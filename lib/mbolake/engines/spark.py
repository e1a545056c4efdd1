"""What every Spark stage does the same way: read inputs at a pinned version, write lineage,
replace exactly the partitions it recomputed."""
from __future__ import annotations

import datetime as dt
import json

from ..runtime.context import Context
from ..schemas import Table, check_spark_schema


def read_pinned(ctx: Context, table: Table, needed_by: str):
    """``(DataFrame, version)`` of ``table`` at its current version; a clear error when absent."""
    from ..io import delta_tables

    version = delta_tables.version(ctx.profile, table)
    if version is None:
        raise ValueError(f"{needed_by} needs {table.name}, which does not exist yet under {ctx.profile.lake_root}")
    df = ctx.spark.read.format("delta").option("versionAsOf", version).load(ctx.profile.table_path(table.name))
    return df, version


def data_version(ctx: Context, versions: dict[str, int]) -> str:
    """Lineage of every output row: input table versions and the code version, as JSON."""
    return json.dumps({"inputs": versions, "code_version": ctx.code_version}, sort_keys=True)


def in_dates(df, start_date: dt.date | None, end_date: dt.date | None, column: str = "session_date"):
    from pyspark.sql import functions as F

    if start_date:
        df = df.where(F.col(column) >= F.lit(start_date))
    if end_date:
        df = df.where(F.col(column) <= F.lit(end_date))
    return df


def pairs_predicate(keys) -> str:
    """A predicate covering exactly these (contract_id, session_date) pairs."""
    return " OR ".join(f"(contract_id = '{c}' AND session_date = DATE'{d}')"
                       for c, d in keys[["contract_id", "session_date"]].drop_duplicates().itertuples(index=False))


def replace_rows(ctx: Context, table: Table, df, where: str, lineage_json: str) -> None:
    """Overwrite the rows matching ``where`` with ``df`` in one Delta commit (schema-checked)."""
    check_spark_schema(table, df)
    (df.write.format("delta").mode("overwrite").option("replaceWhere", where)
     .option("userMetadata", lineage_json).partitionBy(*table.partition_by)
     .save(ctx.profile.table_path(table.name)))
