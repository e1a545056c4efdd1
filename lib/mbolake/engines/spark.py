"""The ``spark`` stage engine: Spark reads the pinned inputs, groups them with a shuffle, calls
the stage's per-group function through ``applyInArrow`` and writes with ``replaceWhere``.

The cluster choice (Databricks). A function with several outputs runs once per output
(``applyInArrow`` returns one schema); the local engine runs it once for all.
"""
from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import pyarrow as pa

from ..schemas import Table, check_spark_schema, spark_schema
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


class SparkEngine(Engine):
    name = "spark"

    def frame(self, source: Source):
        """The source as a Spark DataFrame at its pinned version."""
        from pyspark.sql import functions as F

        self.pin(source.table)
        df = (self.ctx.spark.read.format("delta").option("versionAsOf", self.versions[source.table.name])
              .load(self.ctx.profile.table_path(source.table.name)))
        for condition in source.where:
            df = df.where(_column_condition(condition))
        if source.keys is not None:
            keys = source.keys[key_columns(source.keys)]
            df = df.join(F.broadcast(self.ctx.spark.createDataFrame(keys)), list(keys.columns), "left_semi")
        return df if source.columns is None else df.select(*source.columns)

    def read(self, source: Source, distinct: bool = False) -> pa.Table:
        df = self.frame(source)
        return (df.distinct() if distinct else df).toArrow()

    def group_keys(self, source: Source, by: Sequence[str] = CONTRACT_SESSION) -> pd.DataFrame:
        counts = self.frame(source).groupBy(*by).count().toPandas().rename(columns={"count": "rows"})
        return counts.sort_values(list(by)).reset_index(drop=True)

    def map_groups(self, sources: Sequence[Source], fn: GroupFunction, outputs: Sequence[Table],
                   keys: pd.DataFrame, lineage: str) -> None:
        if keys.empty:
            return
        for output in outputs:
            rows = self._apply(sources, _one_output(fn, outputs, output), spark_schema(output), keys)
            replace_rows(self.ctx, output, rows, keys_predicate(keys), lineage)

    def collect_groups(self, sources: Sequence[Source], fn: GroupFunction, schema: pa.Schema,
                       keys: pd.DataFrame) -> pa.Table:
        if keys.empty:
            return schema.empty_table()
        from pyspark.sql.pandas.types import from_arrow_schema

        return self._apply(sources, _conformed(fn, schema), from_arrow_schema(schema), keys).toArrow().cast(schema)

    def replace(self, output: Table, rows: pa.Table, keys: pd.DataFrame, lineage: str) -> None:
        if not keys.empty:
            df = self.ctx.spark.createDataFrame(rows.to_pandas(), spark_schema(output))
            replace_rows(self.ctx, output, df, keys_predicate(keys), lineage)

    def _apply(self, sources: Sequence[Source], fn, schema, keys: pd.DataFrame):
        """``fn`` over the groups of ``keys`` as a DataFrame of ``schema`` (a Spark schema);
        applyInArrow tells a grouping-key argument by the arity, so it gets plain ones."""
        by = key_columns(keys)
        frames = [self.frame(source.restricted_to(keys)).groupBy(*by) for source in sources]
        if len(frames) == 1:
            return frames[0].applyInArrow(lambda rows: fn(rows), schema)
        if len(frames) == 2:
            return frames[0].cogroup(frames[1]).applyInArrow(lambda left, right: fn(left, right), schema)
        raise ValueError(f"the spark engine groups one or two sources, got {len(frames)}")


def _one_output(fn: GroupFunction, outputs: Sequence[Table], output: Table):
    def rows_of_output(*tables):
        return _concat([rows for out, rows in parts_by_output(fn(*tables), outputs) if out.name == output.name],
                       output.schema)
    return rows_of_output


def _conformed(fn: GroupFunction, schema: pa.Schema):
    def rows(*tables):
        return _concat(list(fn(*tables)), schema)
    return rows


def _concat(parts: list[pa.Table], schema: pa.Schema) -> pa.Table:
    from .local import plain_table

    parts = [plain_table(part).select(schema.names).cast(schema) for part in parts]
    return pa.concat_tables(parts) if parts else schema.empty_table()


def _column_condition(condition: Condition):
    from pyspark.sql import functions as F

    column = F.col(condition.column)
    if condition.op == "in":
        return column.isin(list(condition.value))
    value = F.lit(condition.value)
    return {"==": column == value, "!=": column != value, ">=": column >= value, "<=": column <= value}[condition.op]


def replace_rows(ctx, table: Table, df, where: str, lineage_json: str) -> None:
    """Overwrite the rows matching ``where`` with ``df`` in one Delta commit (schema-checked)."""
    check_spark_schema(table, df)
    (df.write.format("delta").mode("overwrite").option("replaceWhere", where)
     .option("userMetadata", lineage_json).partitionBy(*table.partition_by)
     .save(ctx.profile.table_path(table.name)))
