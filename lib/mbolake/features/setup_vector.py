"""Setup vectors, feature set ``setup_v3`` (FEATURES.md §5, ``gold.setup_vectors``): 345
numbers per episode, anchored at the confirm candle (positions -5..0). Kernel: numpy/pandas.
``setup_v3`` has the layout of ``setup_v2`` (not kept); its values differ through the bars
it is built from (FEATURES.md §3: full-depth band quantities, two-leg modify flow).

- Part A (282): for each position -5..0 in order, the candle's 47 signature numbers
  (:data:`mbolake.features.signature.SIGNATURE_NAMES` order).
- Part B (63): for each of the seven signals :data:`PART_B_SIGNALS`, its six values give
  five first differences (``x[p] - x[p-1]`` for p = -4..0) then four second differences
  (``d1[p] - d1[p-1]`` for p = -3..0).

Names (:data:`SETUP_V3_LAYOUT`, declared once): ``p{pos}_{name}`` for part A (e.g.
``p-5_u_mean``, ``p0_close_side``), ``d1_p{pos}_{signal}`` / ``d2_p{pos}_{signal}`` for
part B (``pos`` = the later position of the difference).

Choices where the spec is silent:

- A position without a signature (before the session's first candle; ``None`` or absent
  from the mapping) is all zeros and sets ``context_truncated``; every part-B difference
  that involves such a position is 0 as well (rather than a difference against a fake 0).
- NaN/±inf → 0 is applied to the signatures before part B is computed and again to the
  final vector; ``n_nonfinite`` counts the non-finite values replaced in the signatures
  (what the stage summary reports).
- ``feature_hash`` = SHA-256 hex of ``feature_set`` (UTF-8) followed by the vector as
  float64 little-endian bytes, after NaN/inf → 0 and -0.0 → 0.0 (so equal values hash
  equally).
"""
from __future__ import annotations

import hashlib
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .signature import SIGNATURE_NAMES, candle_signature, finite

FEATURE_SET = "setup_v3"
POSITIONS = tuple(range(-5, 1))
PART_B_SIGNALS = (
    "u_mean", "pressure_mean", "obi0_lin_mean", "flow_norm_mean", "trade_imbal_mean",
    "wall_support_mean", "gap_spread_mean",
)
_SIG_INDEX = {name: i for i, name in enumerate(SIGNATURE_NAMES)}
PART_B_INDEX = tuple(_SIG_INDEX[s] for s in PART_B_SIGNALS)


def _layout() -> tuple[str, ...]:
    names = [f"p{p}_{n}" for p in POSITIONS for n in SIGNATURE_NAMES]
    for s in PART_B_SIGNALS:
        names += [f"d1_p{p}_{s}" for p in POSITIONS[1:]]
        names += [f"d2_p{p}_{s}" for p in POSITIONS[2:]]
    return tuple(names)


SETUP_V3_LAYOUT: tuple[str, ...] = _layout()
N_FEATURES = len(SETUP_V3_LAYOUT)
assert N_FEATURES == 345 and len(set(SETUP_V3_LAYOUT)) == 345


def _by_position(signatures_by_position) -> dict[int, Any]:
    if isinstance(signatures_by_position, Mapping):
        return {int(k): v for k, v in signatures_by_position.items()}
    seq = list(signatures_by_position)
    if len(seq) != len(POSITIONS):
        raise ValueError(f"expected {len(POSITIONS)} signatures (positions -5..0), got {len(seq)}")
    return dict(zip(POSITIONS, seq))


def setup_vector_with_info(signatures_by_position) -> tuple[np.ndarray, dict[str, Any]]:
    """(vector[345], info) with info = ``context_truncated``, ``truncated_positions``,
    ``n_nonfinite``. ``signatures_by_position``: mapping position (-5..0) → 47 numbers or
    ``None``, or a sequence of six such entries for positions -5..0."""
    sigs = _by_position(signatures_by_position)
    a = np.zeros((len(POSITIONS), len(SIGNATURE_NAMES)))
    present = np.zeros(len(POSITIONS), dtype=bool)
    n_bad = 0
    for i, p in enumerate(POSITIONS):
        s = sigs.get(p)
        if s is None:
            continue
        s = np.asarray(s, dtype=np.float64).ravel()
        if s.size != len(SIGNATURE_NAMES):
            raise ValueError(f"signature at position {p} has {s.size} numbers, expected {len(SIGNATURE_NAMES)}")
        n_bad += int((~np.isfinite(s)).sum())
        a[i] = finite(s)
        present[i] = True
    parts = [a.ravel()]
    for j in PART_B_INDEX:
        x = a[:, j]
        d1 = np.diff(x)
        ok1 = present[1:] & present[:-1]
        d2 = np.diff(d1)
        ok2 = ok1[1:] & ok1[:-1]
        parts += [np.where(ok1, d1, 0.0), np.where(ok2, d2, 0.0)]
    vec = finite(np.concatenate(parts)) + 0.0
    truncated = [p for i, p in enumerate(POSITIONS) if not present[i]]
    return vec, {"context_truncated": bool(truncated), "truncated_positions": truncated, "n_nonfinite": n_bad}


def build_setup_vector(signatures_by_position) -> np.ndarray:
    """The 345-number ``setup_v3`` vector (see :func:`setup_vector_with_info`)."""
    return setup_vector_with_info(signatures_by_position)[0]


def feature_hash(feature_set: str, vector) -> str:
    """SHA-256 (hex) of the feature-set name and the vector's float64 little-endian bytes
    (NaN/inf → 0, -0.0 → 0.0)."""
    v = finite(np.asarray(vector, dtype=np.float64).ravel()) + 0.0
    h = hashlib.sha256(str(feature_set).encode("utf-8"))
    h.update(v.astype("<f8").tobytes())
    return h.hexdigest()


def episode_signatures(
    episode: Mapping[str, Any],
    candles: pd.DataFrame,
    bars: pd.DataFrame,
    tick: float = 0.25,
    positions: Sequence[int] = tuple(range(-5, 7)),
    **signature_kwargs,
) -> dict[int, np.ndarray | None]:
    """Signatures of an episode's candles by position relative to the confirm candle
    (-5..0 lookback, 1..6 look-forward by default); ``None`` where the candle is not in
    ``candles``. A candle's bars: ``candle_ts <= bar_ts < close_ts``."""
    confirm = int(episode["confirm_ts"])
    cn = confirm - int(episode["trigger_ts"])
    close_by_ts = dict(zip(np.asarray(candles["candle_ts"], dtype=np.int64).tolist(),
                           np.asarray(candles["close"], dtype=np.float64).tolist()))
    bts = np.asarray(bars["bar_ts"], dtype=np.int64)
    order = np.argsort(bts, kind="stable")
    bars, bts = bars.iloc[order], bts[order]
    out: dict[int, np.ndarray | None] = {}
    for p in positions:
        t = confirm + p * cn
        if t not in close_by_ts:
            out[p] = None
            continue
        i0, i1 = np.searchsorted(bts, [t, t + cn], side="left")
        out[p] = candle_signature(bars.iloc[i0:i1], float(episode["level_price"]), int(episode["direction"]),
                                  close_by_ts[t], tick=tick, **signature_kwargs)
    return out


def episode_setup_vector(
    episode: Mapping[str, Any], candles: pd.DataFrame, bars: pd.DataFrame, tick: float = 0.25, **signature_kwargs
) -> tuple[np.ndarray, dict[str, Any]]:
    """(vector, info) of one episode; info adds ``feature_hash`` and ``feature_set``. Uses
    only candles -5..0 and their bars (all before ``vector_time``)."""
    sigs = episode_signatures(episode, candles, bars, tick=tick, positions=POSITIONS, **signature_kwargs)
    vec, info = setup_vector_with_info(sigs)
    info["feature_set"] = FEATURE_SET
    info["feature_hash"] = feature_hash(FEATURE_SET, vec)
    return vec, info


def episode_signature_rows(
    episodes: pd.DataFrame, candles: pd.DataFrame, bars: pd.DataFrame, tick: float = 0.25,
    positions: Sequence[int] = tuple(range(-5, 7)), **signature_kwargs,
) -> pd.DataFrame:
    """``silver.feature_primitives`` rows: one per (episode, candle of its lookback and
    look-forward windows that exists in ``candles``), with ``episode_id``, ``position``
    (-5..6, 0 = confirm), ``candle_ts`` and the 47 signature columns."""
    rows = []
    for ep in episodes.to_dict("records"):
        cn = int(ep["confirm_ts"]) - int(ep["trigger_ts"])
        sigs = episode_signatures(ep, candles, bars, tick=tick, positions=positions, **signature_kwargs)
        for p, s in sigs.items():
            if s is not None:
                rows.append({"episode_id": ep["episode_id"], "position": int(p),
                             "candle_ts": int(ep["confirm_ts"]) + p * cn, **dict(zip(SIGNATURE_NAMES, s.tolist()))})
    return pd.DataFrame(rows, columns=["episode_id", "position", "candle_ts", *SIGNATURE_NAMES])


SETUP_VECTOR_COLUMNS = ["episode_id", "vector_time", "feature_set", "vector", "feature_hash", "context_truncated",
                        "n_nonfinite"]


def setup_vectors(
    episodes: pd.DataFrame, candles: pd.DataFrame, bars: pd.DataFrame, tick: float = 0.25, **signature_kwargs
) -> pd.DataFrame:
    """``gold.setup_vectors`` rows for the episodes whose confirm candle is in ``candles``
    (``vector`` = float64 array of 345; see :data:`SETUP_V3_LAYOUT`)."""
    have = set(np.asarray(candles["candle_ts"], dtype=np.int64).tolist())
    rows = []
    for ep in episodes.to_dict("records"):
        if int(ep["confirm_ts"]) not in have:
            continue
        vec, info = episode_setup_vector(ep, candles, bars, tick=tick, **signature_kwargs)
        rows.append({"episode_id": ep["episode_id"], "vector_time": int(ep["vector_time"]), "feature_set": FEATURE_SET,
                     "vector": vec, "feature_hash": info["feature_hash"],
                     "context_truncated": info["context_truncated"], "n_nonfinite": info["n_nonfinite"]})
    return pd.DataFrame(rows, columns=SETUP_VECTOR_COLUMNS)
