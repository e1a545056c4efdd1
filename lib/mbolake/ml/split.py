"""Time-ordered train / val / test split of a training snapshot by ``session_date``.

Never random: whole sessions go to one part, parts follow each other in time, and an
optional embargo drops whole sessions between consecutive parts. The parts are written
next to the snapshot (``splits/{name}/{train,val,test}.parquet`` + ``split.json``).
"""
from __future__ import annotations

import datetime as dt
import json
import shutil
import warnings
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import pandas as pd

from ..core.calendar import as_date
from .snapshot import Snapshot, load_snapshot_dir, sha256_file

PARTS = ("train", "val", "test")
SUMMARY_FILE = "split.json"


class SplitError(ValueError):
    pass


def _range(value) -> tuple[dt.date, dt.date]:
    if isinstance(value, (str, dt.date)):
        d = as_date(value)
        return d, d
    first, last = value
    return as_date(first), as_date(last)


def plan_split(sessions: Iterable, fractions: Sequence[float] | None = (0.6, 0.2, 0.2),
               dates: Mapping[str, object] | None = None, embargo_sessions: int = 0) -> dict:
    """Assign sessions to parts: ``{"train": [...], "val": [...], "test": [...], "embargo": [...]}``.

    ``fractions`` (train, val, test) share the sessions left after the embargo, in time order.
    ``dates`` instead names each part's inclusive date range ``{"train": (first, last), ...}``
    (or a single date); sessions outside every range are unused. ``embargo_sessions`` whole
    sessions separate consecutive parts (with ``dates``, the first sessions of the later part
    are dropped when the gap between the ranges is shorter).
    """
    sessions = sorted({as_date(s) for s in sessions})
    if embargo_sessions < 0:
        raise SplitError(f"embargo_sessions must be >= 0, got {embargo_sessions}")
    if not sessions:
        raise SplitError("the snapshot has no sessions")
    plan: dict[str, list[dt.date]] = {p: [] for p in PARTS}
    embargo: list[dt.date] = []
    if dates is not None:
        unknown = set(dates) - set(PARTS)
        if unknown:
            raise SplitError(f"unknown split part(s) {sorted(unknown)}; parts are {PARTS}")
        for p in PARTS:
            if p not in dates:
                raise SplitError(f"split part {p!r} has no date range")
        ranges = {p: _range(dates[p]) for p in PARTS}
        for p, (a, b) in ranges.items():
            if a > b:
                raise SplitError(f"split part {p!r}: first date {a} is after last date {b}")
        for i, p in enumerate(PARTS):
            for q in PARTS[i + 1:]:
                (a1, b1), (a2, b2) = ranges[p], ranges[q]
                if a1 <= b2 and a2 <= b1:
                    raise SplitError(f"split parts {p!r} ({a1}..{b1}) and {q!r} ({a2}..{b2}) overlap in dates")
                if a2 < a1:
                    raise SplitError(f"split part {q!r} ({a2}..{b2}) comes before {p!r} ({a1}..{b1}); "
                                     "parts must follow each other in time")
        for p in PARTS:
            a, b = ranges[p]
            plan[p] = [s for s in sessions if a <= s <= b]
        for prev, part in zip(PARTS, PARTS[1:]):
            if not plan[prev] or not plan[part]:
                continue
            gap = sum(1 for s in sessions if plan[prev][-1] < s < plan[part][0])
            drop = max(0, embargo_sessions - gap)
            embargo += plan[part][:drop]
            plan[part] = plan[part][drop:]
    else:
        if fractions is None or len(fractions) != 3:
            raise SplitError(f"fractions must be three numbers (train, val, test), got {fractions!r}")
        if any(f < 0 for f in fractions) or sum(fractions) <= 0:
            raise SplitError(f"fractions must be non-negative with a positive sum, got {fractions!r}")
        total = float(sum(fractions))
        usable = len(sessions) - 2 * embargo_sessions
        if usable < 3:
            raise SplitError(f"{len(sessions)} session(s) cannot make train, val and test parts "
                             f"with an embargo of {embargo_sessions} session(s)")
        n_train = int(round(fractions[0] / total * usable))
        n_val = int(round(fractions[1] / total * usable))
        n_test = usable - n_train - n_val
        i = 0
        for p, n in (("train", n_train), ("val", n_val), ("test", n_test)):
            n = max(n, 0)
            plan[p] = sessions[i:i + n]
            i += n
            if p != "test":
                embargo += sessions[i:i + embargo_sessions]
                i += embargo_sessions
    for p in PARTS:
        if not plan[p]:
            raise SplitError(f"split part {p!r} is empty (sessions {sessions[0]}..{sessions[-1]}, "
                             f"embargo {embargo_sessions}); change the fractions, dates or embargo")
    for prev, part in zip(PARTS, PARTS[1:]):
        if plan[prev][-1] >= plan[part][0]:
            raise SplitError(f"split parts {prev!r} and {part!r} overlap in dates")
    return {**plan, "embargo": embargo}


def split_snapshot(snapshot: Snapshot | str | Path, name: str = "default",
                   fractions: Sequence[float] | None = (0.6, 0.2, 0.2), dates: Mapping[str, object] | None = None,
                   embargo_sessions: int = 0, overwrite: bool = False, out_dir: str | Path | None = None) -> dict:
    """Split ``snapshot`` by session and write the parts; returns the summary (also ``split.json``).

    The parts go to ``<snapshot>/splits/<name>/`` unless ``out_dir`` names another folder
    (e.g. a job output when the snapshot is mounted read-only on Azure ML).
    """
    if not isinstance(snapshot, Snapshot):
        snapshot = load_snapshot_dir(snapshot)
    if not name or "/" in name or name.startswith("."):
        raise SplitError(f"bad split name {name!r}")
    plan = plan_split(snapshot.sessions, fractions=None if dates is not None else fractions, dates=dates,
                      embargo_sessions=embargo_sessions)
    target = (Path(out_dir) if out_dir is not None else snapshot.path / "splits") / name
    if target.exists():
        if not overwrite:
            raise FileExistsError(f"split {target} exists already (pass overwrite=True to replace it)")
        shutil.rmtree(target)
    partial = target.with_name(target.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    frame = snapshot.frame
    parts = {}
    for p in PARTS:
        chosen = set(plan[p])
        df = frame[frame["session_date"].isin(chosen)].reset_index(drop=True)
        f = partial / f"{p}.parquet"
        df.to_parquet(f, index=False)
        parts[p] = {
            "path": str(target / f.name), "rows": int(len(df)), "sessions": len(plan[p]),
            "first_date": plan[p][0].isoformat(), "last_date": plan[p][-1].isoformat(),
            "outcomes": {str(k): int(v) for k, v in df["outcome"].value_counts().sort_index().items()},
            "sha256": sha256_file(f),
        }
    summary = {
        "name": name, "snapshot": str(snapshot.path), "model_id": snapshot.model_id, "run_date": snapshot.run_date,
        "feature_set": snapshot.feature_set, "data_version": snapshot.data_version,
        "method": "dates" if dates is not None else "fractions",
        "fractions": list(fractions) if dates is None else None,
        "embargo_sessions": int(embargo_sessions), "embargoed": [d.isoformat() for d in plan["embargo"]],
        "unused_rows": int(len(frame) - sum(v["rows"] for v in parts.values())),
        "parts": parts,
    }
    (partial / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True))
    partial.rename(target)
    return summary


def load_split(summary_or_dir: Mapping | str | Path, verify: bool = True) -> dict[str, pd.DataFrame]:
    """The three parts of a written split (``{"train": df, "val": df, "test": df}``)."""
    if isinstance(summary_or_dir, Mapping):
        summary = summary_or_dir
    else:
        summary = json.loads((Path(summary_or_dir) / SUMMARY_FILE).read_text())
    out = {}
    for p in PARTS:
        info = summary["parts"][p]
        if verify and sha256_file(info["path"]) != info["sha256"]:
            raise SplitError(f"split file {info['path']} does not match its recorded hash")
        df = pd.read_parquet(info["path"])
        df["session_date"] = df["session_date"].map(as_date)
        out[p] = df
    return out


def walk_forward_folds(sessions: Iterable, n_folds: int, embargo_sessions: int = 0,
                       min_train_sessions: int = 1) -> list[tuple[list[dt.date], list[dt.date]]]:
    """Expanding-window folds ``[(train_sessions, val_sessions), ...]`` in time order.

    After the first ``min_train_sessions`` (+ embargo) sessions, the rest is cut into
    ``n_folds`` consecutive, nearly equal validation blocks; each fold trains on every
    session before its block, less the ``embargo_sessions`` just before it.
    """
    sessions = sorted({as_date(s) for s in sessions})
    if n_folds < 1:
        raise SplitError(f"n_folds must be >= 1, got {n_folds}")
    n = len(sessions)
    usable = n - min_train_sessions - embargo_sessions
    if usable < n_folds:
        raise SplitError(f"{n} session(s) cannot make {n_folds} walk-forward fold(s) with at least "
                         f"{min_train_sessions} training session(s) and an embargo of {embargo_sessions}")
    size, extra = divmod(usable, n_folds)
    folds = []
    start = n - usable
    for k in range(n_folds):
        width = size + (1 if k >= n_folds - extra else 0)
        val = sessions[start:start + width]
        train = sessions[:max(0, start - embargo_sessions)]
        folds.append((train, val))
        start += width
    return folds


def log_split_to_mlflow(summary: Mapping, frames: Mapping[str, pd.DataFrame] | None = None) -> None:
    """Log the split (path, row counts, date ranges, hashes) to the active MLflow run.

    Each part becomes an MLflow dataset input (context = part) whose source is its parquet
    file; params carry the counts and ranges; ``split/split.json`` is the full summary.
    """
    import mlflow

    frames = frames or load_split(summary, verify=False)
    params = {"split.name": summary["name"], "split.snapshot": summary["snapshot"],
              "split.data_version": summary["data_version"], "split.embargo_sessions": summary["embargo_sessions"],
              "split.method": summary["method"]}
    for p in PARTS:
        info = summary["parts"][p]
        params.update({f"split.{p}.rows": info["rows"], f"split.{p}.sessions": info["sessions"],
                       f"split.{p}.first_date": info["first_date"], f"split.{p}.last_date": info["last_date"],
                       f"split.{p}.sha256": info["sha256"]})
        meta = frames[p].drop(columns=["feature_vector"], errors="ignore")
        with warnings.catch_warnings():  # ambiguous local source / integer-column hints
            warnings.simplefilter("ignore", UserWarning)
            ds = mlflow.data.from_pandas(meta, source=info["path"], targets="outcome",
                                         name=f"{summary['model_id']}_{summary['run_date']}_{summary['name']}_{p}",
                                         digest=info["sha256"][:10])
            mlflow.log_input(ds, context=p, tags={"sha256": info["sha256"], "rows": str(info["rows"])})
    mlflow.log_params(params)
    mlflow.log_dict(dict(summary), "split/split.json")
