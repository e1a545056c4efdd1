"""GoldExtractSetupVectors: ``silver.feature_primitives`` -> ``gold.setup_vectors``, ``gold.labels``,
``gold.training_view`` (the frozen training snapshot is ``stages.training_snapshot``).

The primitives of an episode hold the signatures of positions -5..6 and the OHLC of those
candles, so the vector (positions -5..0) and the label (trigger = -1, confirm = 0,
look-forward 1..6) are both computed from them. Primitives are small (a dozen rows per
episode), so the vectors are built on the driver from one collected frame.
"""
from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from ..runtime.context import Context
from ..core.products import get_product
from ..schemas import (FEATURE_PRIMITIVES, LABELS, MBO_NORMALIZED, SESSION_LEVELS, SETUP_VECTORS, TRAINING_VIEW,
                       spark_schema)
from ..engines import local as local_engine
from ..engines.spark import data_version, in_dates, pairs_predicate, read_pinned, replace_rows
from ..engines.local import stage_engine
from .silver_features import StageSummary


def lookback_spec(product) -> str:
    return json.dumps({"candle": "2min", "bar": "5s", "lookback_candles": 6, "lookforward_candles": 6,
                       "positions": [-5, 0], "window": ["08:30", "12:30"], "tick_size": product.tick_size},
                      sort_keys=True)


def episode_outputs(primitives: pd.DataFrame, product, lineage: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(setup vector rows, label rows) for every episode in ``primitives``."""
    from ..features.labels import LabelParams, label_for_episode
    from ..features.setup_vector import FEATURE_SET, feature_hash, setup_vector_with_info
    from ..features.signature import SIGNATURE_NAMES

    spec = lookback_spec(product)
    label_params = LabelParams.for_tick(product.tick_size)
    vectors, labels = [], []
    for episode_id, rows in primitives.groupby("episode_id", sort=True):
        ep = rows.iloc[0]
        by_position = {int(r.position): r for r in rows.itertuples(index=False)}
        sigs = {p: rows.loc[rows["position"] == p, list(SIGNATURE_NAMES)].to_numpy(float)[0]
                if p in by_position else None for p in range(-5, 1)}
        vector, info = setup_vector_with_info(sigs)
        vectors.append({
            "vector_time": int(ep.vector_time), "model_id": product.model_id, "contract_id": ep.contract_id,
            "session_date": ep.session_date, "episode_id": episode_id, "level_type": ep.level_type,
            "approach_direction": int(ep.direction), "lookback_spec": spec, "feature_set": FEATURE_SET,
            "feature_vector": vector.tolist(), "feature_hash": feature_hash(FEATURE_SET, vector),
            "context_truncated": info["context_truncated"], "n_nonfinite": info["n_nonfinite"],
            "data_version": lineage})
        by_ts = {int(r.candle_ts): (r.open, r.high, r.low, r.close) for r in rows.itertuples(index=False)}
        label = label_for_episode(ep, by_ts, params=label_params)
        label["label_complete"] = bool(label["label_complete"] and ep.lookforward_complete)
        labels.append({"episode_id": episode_id, "contract_id": ep.contract_id, "session_date": ep.session_date,
                       **{k: label[k] for k in LABELS.schema.names if k in label}, "data_version": lineage})
    vec_df = pd.DataFrame(vectors, columns=SETUP_VECTORS.schema.names)
    lab_df = pd.DataFrame(labels, columns=LABELS.schema.names)
    lab_df["first_hit_offset_bars"] = lab_df["first_hit_offset_bars"].astype(np.int32)
    vec_df["approach_direction"] = vec_df["approach_direction"].astype(np.int32)
    return vec_df, lab_df


class GoldExtractSetupVectors:
    name = "GoldExtractSetupVectors"
    inputs = (FEATURE_PRIMITIVES.name, SESSION_LEVELS.name, MBO_NORMALIZED.name)
    outputs = (SETUP_VECTORS.name, LABELS.name, TRAINING_VIEW.name)

    def run(self, ctx: Context, *, underlier: str, start_date=None, end_date=None,
            engine: str | None = None) -> StageSummary:
        t0 = time.perf_counter()
        product = get_product(underlier)
        run = self._run_local if stage_engine(ctx, engine) == "local" else self._run_spark
        prims_rows, vectors, labels, lineage = run(ctx, product, start_date, end_date)
        if vectors is None:
            return StageSummary(self.name, 0, 0, time.perf_counter() - t0, json.loads(lineage),
                                notes=["no episodes in the range"])
        balance = (labels.merge(vectors[["episode_id", "level_type", "approach_direction"]], on="episode_id")
                   .groupby(["session_date", "outcome"]).size().unstack(fill_value=0).reset_index())
        notes = [f"{int(vectors['n_nonfinite'].sum())} NaN/inf signature values replaced by 0",
                 f"{int(vectors['context_truncated'].sum())} vector(s) with truncated context",
                 f"{int((~labels['label_complete']).sum())} episode(s) with an incomplete look-forward "
                 f"(kept for inference, excluded from training)"]
        return StageSummary(self.name, prims_rows, len(vectors), time.perf_counter() - t0, json.loads(lineage),
                            balance, notes)

    def _run_local(self, ctx: Context, product, start_date, end_date):
        prims = local_engine.PinnedTable(ctx, FEATURE_PRIMITIVES, self.name)
        levels = local_engine.PinnedTable(ctx, SESSION_LEVELS, self.name)
        mbo = local_engine.PinnedTable(ctx, MBO_NORMALIZED, self.name)
        lineage = data_version(ctx, {FEATURE_PRIMITIVES.name: prims.version, SESSION_LEVELS.name: levels.version,
                                     MBO_NORMALIZED.name: mbo.version})
        dates = local_engine.date_filter(start_date, end_date)
        prims_pdf = local_engine.plain_table(prims.read(None, dates)).to_pandas()
        prims_pdf = prims_pdf[prims_pdf["contract_id"].str.startswith(f"{product.venue}:")]
        if prims_pdf.empty:
            return 0, None, None, lineage
        vectors, labels = episode_outputs(prims_pdf, product, lineage)
        where = pairs_predicate(vectors)
        local_engine.replace(ctx, SETUP_VECTORS, [local_engine.arrow_rows(vectors, SETUP_VECTORS)], where, lineage)
        local_engine.replace(ctx, LABELS, [local_engine.arrow_rows(labels, LABELS)], where, lineage)
        in_pairs = local_engine.pairs_filter(vectors)
        meta = local_engine.plain_table(mbo.read(SESSION_META_COLUMNS, in_pairs & pc.field("is_front_month")))
        meta = meta.group_by(SESSION_META_COLUMNS).aggregate([]).to_pandas()
        complete = local_engine.plain_table(levels.read(["contract_id", "session_date", "levels_complete"],
                                                        in_pairs)).to_pandas()
        view = (vectors.merge(labels.drop(columns=["contract_id", "session_date", "data_version"]), on="episode_id")
                .merge(meta.merge(complete, on=["contract_id", "session_date"], how="left"),
                       on=["contract_id", "session_date"], how="left"))
        local_engine.replace(ctx, TRAINING_VIEW, [local_engine.arrow_rows(view, TRAINING_VIEW)], where, lineage)
        return len(prims_pdf), vectors, labels, lineage

    def _run_spark(self, ctx: Context, product, start_date, end_date):
        from pyspark.sql import functions as F

        prims, prim_version = read_pinned(ctx, FEATURE_PRIMITIVES, self.name)
        levels, level_version = read_pinned(ctx, SESSION_LEVELS, self.name)
        mbo, mbo_version = read_pinned(ctx, MBO_NORMALIZED, self.name)
        lineage = data_version(ctx, {FEATURE_PRIMITIVES.name: prim_version, SESSION_LEVELS.name: level_version,
                                     MBO_NORMALIZED.name: mbo_version})
        prims_pdf = in_dates(prims, start_date, end_date).where(
            F.col("contract_id").startswith(f"{product.venue}:")).toPandas()
        if prims_pdf.empty:
            return 0, None, None, lineage
        vectors, labels = episode_outputs(prims_pdf, product, lineage)
        where = pairs_predicate(vectors)
        spark = ctx.spark
        replace_rows(ctx, SETUP_VECTORS, spark.createDataFrame(vectors, spark_schema(SETUP_VECTORS)), where, lineage)
        replace_rows(ctx, LABELS, spark.createDataFrame(labels, spark_schema(LABELS)), where, lineage)
        session_meta = (in_dates(mbo, start_date, end_date).where(F.col("is_front_month"))
                        .select(*SESSION_META_COLUMNS).distinct()
                        .join(levels.select("contract_id", "session_date", "levels_complete"),
                              ["contract_id", "session_date"], "left"))
        view = (spark.read.format("delta").load(ctx.profile.table_path(SETUP_VECTORS.name)).where(where)
                .join(spark.read.format("delta").load(ctx.profile.table_path(LABELS.name)).where(where)
                      .drop("contract_id", "session_date", "data_version"), "episode_id")
                .join(session_meta, ["contract_id", "session_date"], "left")
                .select(*TRAINING_VIEW.schema.names))
        replace_rows(ctx, TRAINING_VIEW, view, where, lineage)
        return len(prims_pdf), vectors, labels, lineage


SESSION_META_COLUMNS = ["contract_id", "session_date", "front_month_dominance", "roll_contaminated"]
