"""A synthetic training snapshot with the Gold export's columns (tests and demos only).

Outcomes are learnable: a few feature dimensions have class-dependent means; the rest
is noise, with a sprinkle of NaN as in real vectors with non-finite features.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..ml.snapshot import DATA_FILE, MANIFEST_FILE, sha256_file, snapshot_dir

CLASSES = ("BREAK", "CHOP", "REJECT")


def _layout():
    from ..features.setup_vector import FEATURE_SET, SETUP_V3_LAYOUT

    return FEATURE_SET, list(SETUP_V3_LAYOUT)


def synthetic_training_frame(n_sessions: int = 8, episodes_per_session: int = 30, seed: int = 7,
                             first_session: dt.date = dt.date(2024, 3, 4), model_id: str = "ES_MODEL",
                             signal: float = 1.5, nan_rate: float = 0.002) -> pd.DataFrame:
    feature_set, layout = _layout()
    rng = np.random.default_rng(seed)
    n_feat = len(layout)
    sessions, d = [], first_session
    while len(sessions) < n_sessions:
        if d.weekday() < 5:
            sessions.append(d)
        d += dt.timedelta(days=1)
    rows = []
    for s_idx, session in enumerate(sessions):
        base_ns = int(pd.Timestamp(session, tz="America/New_York").value) + 9 * 3600 * 10**9 + 30 * 60 * 10**9
        for e in range(episodes_per_session):
            outcome = CLASSES[int(rng.choice(3, p=[0.4, 0.25, 0.35]))]
            vec = rng.normal(0.0, 1.0, n_feat)
            k = CLASSES.index(outcome)
            vec[:6] += signal * np.array([1.0, -1.0, 0.5, 0.0, 0.0, 0.0]) * (k - 1)
            vec[6:12] += signal * (1.0 if outcome == "CHOP" else -0.5)
            vec[rng.random(n_feat) < nan_rate] = np.nan
            rows.append({
                "vector_time": base_ns + e * 5 * 60 * 10**9, "model_id": model_id,
                "contract_id": "ESM4", "session_date": session,
                "episode_id": f"{model_id}-{session:%Y%m%d}-{e:03d}",
                "level_type": ["PDH", "PDL", "ONH", "ONL", "OR_HIGH"][e % 5],
                "approach_direction": 1 if e % 2 == 0 else -1, "lookback_spec": "5s_bars_p-5..0",
                "feature_set": feature_set, "feature_vector": vec.tolist(),
                "feature_hash": f"h{s_idx:02d}{e:04d}", "context_truncated": False,
                "n_nonfinite": int(np.isnan(vec).sum()), "data_version": "synthetic",
                "outcome": outcome, "outcome_score": float(k - 1), "max_signed_dist": 1.0, "min_signed_dist": -1.0,
                "first_hit_side": "up", "first_hit_offset_bars": 2, "mae_pts": 0.5, "mfe_pts": 1.5,
                "chop_flag": outcome == "CHOP", "failed_break_flag": False, "both_sides_hit_flag": False,
                "label_complete": True, "levels_complete": True, "front_month_dominance": 0.9,
                "roll_contaminated": False,
            })
    df = pd.DataFrame(rows)
    df["approach_direction"] = df["approach_direction"].astype("int32")
    df["first_hit_offset_bars"] = df["first_hit_offset_bars"].astype("int32")
    return df


def write_synthetic_snapshot(ml_artifacts_root: str | Path, model_id: str = "ES_MODEL",
                             run_date: dt.date = dt.date(2024, 6, 1), **kwargs) -> Path:
    """Write ``datasets/{model_id}/{run_date}/training_view.parquet`` + ``manifest.json``."""
    feature_set, layout = _layout()
    df = synthetic_training_frame(model_id=model_id, **kwargs)
    target = snapshot_dir(ml_artifacts_root, model_id, run_date)
    target.mkdir(parents=True, exist_ok=False)
    data_file = target / DATA_FILE
    df.to_parquet(data_file, index=False)
    manifest = {
        "model_id": model_id, "run_date": run_date.isoformat(), "feature_set": feature_set,
        "feature_layout": layout, "rows": len(df), "outcomes": df["outcome"].value_counts().to_dict(),
        "sessions": sorted(str(d) for d in df["session_date"].unique()),
        "delta_versions": {"gold.training_view": 0, "gold.setup_vectors": 0, "gold.labels": 0},
        "code_version": "synthetic", "files": {data_file.name: sha256_file(data_file)},
        "created_at": "2024-06-01T00:00:00+00:00",
    }
    (target / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return target
