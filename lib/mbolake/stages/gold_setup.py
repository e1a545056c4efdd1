"""GoldExtractSetupVectors: ``silver.feature_primitives`` -> ``gold.setup_vectors``, ``gold.labels``,
``gold.training_view`` (the frozen training snapshot is ``stages.training_snapshot``).

The primitives of an episode hold the signatures of positions -5..6 and the OHLC of those
candles, so the vector (positions -5..0) and the label (trigger = -1, confirm = 0,
look-forward 1..6) are both computed from them. Primitives are small (a dozen rows per
episode), so the vectors are built on the driver from one collected frame.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from ..core.products import Product
from ..engines import Engine, Source, in_dates, where
from ..engines.local import arrow_rows
from ..schemas import FEATURE_PRIMITIVES, LABELS, MBO_NORMALIZED, SESSION_LEVELS, SETUP_VECTORS, TRAINING_VIEW
from .base import SilverFilterFirst4Hours, Stage, StageSummary


def lookback_spec(product, window: list[str]) -> str:
    return json.dumps({"candle": "2min", "bar": "5s", "lookback_candles": 6, "lookforward_candles": 6,
                       "positions": [-5, 0], "window": window, "tick_size": product.tick_size},
                      sort_keys=True)


def window_of(primitives_lineage: str) -> list[str]:
    """The session window the primitives were computed over, from their lineage (rows written
    before lineage carried it used the default window)."""
    return json.loads(primitives_lineage).get("window") or SilverFilterFirst4Hours().label()


def episode_outputs(primitives: pd.DataFrame, product, lineage: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(setup vector rows, label rows) for every episode in ``primitives``."""
    from ..features.labels import LabelParams, label_for_episode

    label_params = LabelParams.for_tick(product.tick_size)
    vectors, labels = [], []
    for episode_id, rows in primitives.groupby("episode_id", sort=True):
        ep = rows.iloc[0]
        vectors.append(vector_row(episode_id, rows, product, lineage))
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


def vector_row(episode_id: str, rows: pd.DataFrame, product, lineage: str) -> dict:
    """The ``gold.setup_vectors`` row of one episode from its primitive rows (positions -5..0
    are used; shared with rt silver, which builds it when the confirm candle closes)."""
    from ..features.setup_vector import FEATURE_SET, feature_hash, setup_vector_with_info
    from ..features.signature import SIGNATURE_NAMES

    ep = rows.iloc[0]
    present = set(rows["position"].astype(int))
    sigs = {p: rows.loc[rows["position"] == p, list(SIGNATURE_NAMES)].to_numpy(float)[0] if p in present else None
            for p in range(-5, 1)}
    vector, info = setup_vector_with_info(sigs)
    return {"vector_time": int(ep.vector_time), "model_id": product.model_id, "contract_id": ep.contract_id,
            "session_date": ep.session_date, "episode_id": episode_id, "level_type": ep.level_type,
            "approach_direction": int(ep.direction), "lookback_spec": lookback_spec(product, window_of(ep.data_version)),
            "feature_set": FEATURE_SET, "feature_vector": vector.tolist(),
            "feature_hash": feature_hash(FEATURE_SET, vector), "context_truncated": info["context_truncated"],
            "n_nonfinite": info["n_nonfinite"], "data_version": lineage}


class GoldExtractSetupVectors(Stage):
    name = "GoldExtractSetupVectors"
    inputs = (FEATURE_PRIMITIVES, SESSION_LEVELS, MBO_NORMALIZED)
    outputs = (SETUP_VECTORS, LABELS, TRAINING_VIEW)

    def execute(self, engine: Engine, product: Product, start_date, end_date) -> StageSummary:
        engine.pin(*self.inputs)
        lineage = engine.lineage()
        prims = engine.read(Source(FEATURE_PRIMITIVES, where=in_dates(start_date, end_date))).to_pandas()
        prims = prims[prims["contract_id"].str.startswith(f"{product.venue}:")]
        if prims.empty:
            return self.summary(0, 0, lineage, notes=["no episodes in the range"])
        vectors, labels = episode_outputs(prims, product, lineage)
        keys = vectors[KEYS].drop_duplicates().reset_index(drop=True)
        engine.replace(SETUP_VECTORS, arrow_rows(vectors, SETUP_VECTORS), keys, lineage)
        engine.replace(LABELS, arrow_rows(labels, LABELS), keys, lineage)
        engine.replace(TRAINING_VIEW, arrow_rows(training_view(engine, vectors, labels, keys), TRAINING_VIEW), keys,
                       lineage)
        balance = (labels.merge(vectors[["episode_id", "level_type", "approach_direction"]], on="episode_id")
                   .groupby(["session_date", "outcome"]).size().unstack(fill_value=0).reset_index())
        notes = [f"{int(vectors['n_nonfinite'].sum())} NaN/inf signature values replaced by 0",
                 f"{int(vectors['context_truncated'].sum())} vector(s) with truncated context",
                 f"{int((~labels['label_complete']).sum())} episode(s) with an incomplete look-forward "
                 f"(kept for inference, excluded from training)"]
        return self.summary(len(prims), len(vectors), lineage, balance, notes)


KEYS = ["contract_id", "session_date"]
SESSION_META_COLUMNS = ["contract_id", "session_date", "front_month_dominance", "roll_contaminated"]


def training_view(engine: Engine, vectors: pd.DataFrame, labels: pd.DataFrame, keys: pd.DataFrame) -> pd.DataFrame:
    """Vectors joined with their labels and the session's front-month metadata."""
    meta = engine.read(Source(MBO_NORMALIZED, SESSION_META_COLUMNS, where(is_front_month=True), keys),
                       distinct=True).to_pandas()
    complete = engine.read(Source(SESSION_LEVELS, ["contract_id", "session_date", "levels_complete"],
                                  keys=keys)).to_pandas()
    return (vectors.merge(labels.drop(columns=["contract_id", "session_date", "data_version"]), on="episode_id")
            .merge(meta.merge(complete, on=KEYS, how="left"), on=KEYS, how="left"))
