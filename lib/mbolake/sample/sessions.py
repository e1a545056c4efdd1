"""The embedded sample: make sure the synthetic sessions exist, and look at them."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..runtime.config import Profile
from . import synth


@dataclass
class SampleResult:
    paths: list[Path]
    generated: bool

    @property
    def files(self) -> pd.DataFrame:
        return pd.DataFrame(
            {"file": [str(p) for p in self.paths], "bytes": [p.stat().st_size for p in self.paths],
             "generated_now": self.generated}
        )


def ensure_sample(profile: Profile, *, sessions: int, first_date: dt.date, intensity: int, seed: int,
                  overwrite: bool = False, progress: bool = True) -> SampleResult:
    """Generate the sessions into the landing zone unless all of them are already there."""
    params = synth.SynthParams(sessions=sessions, first_date=first_date, intensity=intensity, seed=seed)
    params.validate()
    root = Path(profile.raw_dbn_root)
    expected = [synth.session_path(root, d) for d in synth.session_dates(first_date, sessions)]
    if not overwrite and all(p.exists() for p in expected):
        return SampleResult(expected, generated=False)
    return SampleResult(synth.generate_sample(root, params, progress=progress), generated=True)


def decode_overview(paths: list[Path]) -> pd.DataFrame:
    """Records per file, symbol and action, decoded by Databento's own library."""
    import databento

    frames = []
    for path in paths:
        df = databento.DBNStore.from_file(str(path)).to_df(price_type="fixed", map_symbols=True)
        counts = df.groupby(["symbol", "action"]).size().unstack(fill_value=0)
        counts.insert(0, "file", Path(path).name)
        frames.append(counts.reset_index())
    return pd.concat(frames, ignore_index=True).fillna(0)


def plot_session_mid(path: Path, every: int = 50):
    """Trade prints of the front contract over the session (New York time)."""
    import databento
    import plotly.express as px

    df = databento.DBNStore.from_file(str(path)).to_df(map_symbols=True).reset_index()
    trades = df[(df["action"] == "T") & ~df["symbol"].str.contains("-")]
    front = trades["symbol"].value_counts().idxmax()
    trades = trades[trades["symbol"] == front].iloc[::every]
    trades = trades.assign(time_ny=trades["ts_recv"].dt.tz_convert("America/New_York"))
    fig = px.line(trades, x="time_ny", y="price", title=f"{Path(path).name}: {front} trade prices (every {every}th)")
    fig.update_layout(height=380, xaxis_title="New York time", yaxis_title="price (points)")
    return fig


__all__ = ["SampleResult", "ensure_sample", "decode_overview", "plot_session_mid"]
