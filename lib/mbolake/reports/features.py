"""The features report: the frozen training snapshot's setup vectors per level type and
approach direction (distributions per family, NaN / inf counts, drift across sessions),
episode counts and label balance per session, and a few episodes' session charts."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..ml.snapshot import Snapshot, load_snapshot_dir, resolve_snapshot_dir
from ..runtime.config import Profile
from .paths import display_path

# Confirm-candle (position 0) signature features shown per family.
FAMILIES = {
    "location": ("p0_time_in_zone_frac", "p0_time_far_side_frac", "p0_close_side"),
    "u (distance)": ("p0_u_mean", "p0_u_std", "p0_u_slope"),
    "pressure": ("p0_pressure_mean", "p0_pressure_std", "p0_pressure_slope"),
    "book": ("p0_obi0_lin_mean", "p0_obi10_lin_mean", "p0_cdi_lin_mean"),
    "flow": ("p0_flow_norm_mean", "p0_trade_imbal_mean", "p0_trade_activity_mean"),
    "walls": ("p0_wall_support_mean", "p0_wall_dist_support_mean", "p0_gap_spread_mean"),
}
DRIFT_FEATURES = ("p0_u_mean", "p0_pressure_mean", "p0_obi0_lin_mean", "p0_flow_norm_mean")


def load(profile: Profile, model_id: str, sessions: list | None = None) -> Snapshot | None:
    """The latest training snapshot of ``model_id`` (``None`` when there is none)."""
    try:
        snapshot = load_snapshot_dir(resolve_snapshot_dir(profile.ml_artifacts_root, model_id))
    except (FileNotFoundError, ValueError):
        return None
    if sessions:
        wanted = {str(s) for s in sessions}
        snapshot.frame = snapshot.frame[snapshot.frame["session_date"].astype(str).isin(wanted)].reset_index(drop=True)
    return snapshot


def headline(profile: Profile, snapshot: Snapshot | None) -> str:
    """Which snapshot (relative to the project root: the report is published) and its episodes."""
    if snapshot is None:
        return "no training snapshot: Gold has not exported one"
    return f"snapshot {display_path(snapshot.path, profile.root)}: {len(snapshot.frame):,} episodes"


def frame(snapshot: Snapshot) -> pd.DataFrame:
    meta = snapshot.frame[["session_date", "level_type", "approach_direction", "outcome"]].astype(
        {"session_date": str, "approach_direction": str})
    return pd.concat([meta.reset_index(drop=True), snapshot.X().reset_index(drop=True)], axis=1)


def family_of(name: str) -> str:
    for family, names in FAMILIES.items():
        if any(name.endswith(n[3:]) for n in names):
            return family
    return "differences" if name.startswith(("d1_", "d2_")) else "other"


def nonfinite_counts(snapshot: Snapshot) -> pd.DataFrame:
    """NaN and inf per family over the whole snapshot."""
    X = snapshot.X()
    values = X.to_numpy(dtype=float)
    per_column = pd.DataFrame({"feature": X.columns, "nan": np.isnan(values).sum(axis=0),
                               "inf": np.isinf(values).sum(axis=0)})
    per_column["family"] = per_column["feature"].map(family_of)
    table = per_column.groupby("family")[["nan", "inf"]].sum()
    table["features"] = per_column.groupby("family").size()
    return table.reset_index()


def plot_family(data: pd.DataFrame, family: str):
    import plotly.express as px

    long = data.melt(id_vars=["level_type", "approach_direction"], value_vars=list(FAMILIES[family]),
                     var_name="feature")
    fig = px.box(long, x="feature", y="value", color="level_type", facet_col="approach_direction", points=False,
                 title=f"{family}: confirm-candle features per level type, by approach direction")
    fig.update_layout(height=380)
    return fig


def plot_drift(data: pd.DataFrame):
    import plotly.express as px

    means = data.groupby("session_date")[list(DRIFT_FEATURES)].mean().reset_index().melt(
        id_vars="session_date", var_name="feature", value_name="mean")
    return px.line(means, x="session_date", y="mean", color="feature", markers=True,
                   title="Drift: per-session mean of key confirm-candle features")


def episode_table(data: pd.DataFrame) -> pd.DataFrame:
    """Episodes per session by level type and direction, with the label balance."""
    counts = data.groupby(["session_date", "level_type", "approach_direction"]).size().unstack(
        ["level_type", "approach_direction"], fill_value=0)
    counts.columns = [f"{lt} {d}" for lt, d in counts.columns]
    labels = data.groupby(["session_date", "outcome"]).size().unstack("outcome", fill_value=0)
    return pd.concat([counts, labels.add_prefix("label ")], axis=1).reset_index()


def plot_label_balance(data: pd.DataFrame):
    import plotly.express as px

    counts = data.groupby(["session_date", "outcome"]).size().rename("episodes").reset_index()
    return px.bar(counts, x="session_date", y="episodes", color="outcome", title="Label balance per session",
                  color_discrete_map={"BREAK": "#2ca02c", "REJECT": "#d62728", "CHOP": "#7f7f7f"})


def episode_charts(ctx, snapshot: Snapshot, limit: int = 2) -> list:
    """Session charts (views.features.plot_session) of the first sessions' episodes, when Silver is there."""
    from ..views import features as feature_views

    charts = []
    for (contract, session), _ in list(snapshot.frame.groupby(["contract_id", "session_date"]))[:limit]:
        try:
            charts.append(feature_views.plot_session(feature_views.session_frames(ctx, contract, session),
                                                     f"{contract} {session}: episodes and outcomes"))
        except Exception as exc:  # a generated snapshot has no Silver tables behind it
            print(f"no session chart for {contract} {session}: {type(exc).__name__}: {str(exc)[:120]}")
    return charts
