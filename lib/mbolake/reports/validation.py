"""The end-to-end validation report: what a run did and whether it can be trusted.

Reads only: the run's record (``runs/<run_id>/run.json``, ``summaries/``), the Delta tables
through ``io.delta_tables`` (Bronze's manifest and quarantine, Silver's book quality), the
training snapshot's manifest and the MLflow registry. A table that does not exist yet (a
failed or partial run) is shown as missing, never raised. Paths are shown relative to the
project root (``paths.display_path``): the report is published.
"""
from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..io import delta_tables
from ..runtime import run_record
from ..runtime.config import Profile
from ..schemas import BOOK_QUALITY, INGEST_MANIFEST, QUARANTINE
from .paths import display_path

# Counters that mean the book or the feed is wrong; each is red when non-zero.
BOOK_ALARMS = ("crossed_groups", "unknown_cancels", "unknown_modifies", "unknown_fills", "negative_size_attempts",
               "duplicate_adds", "invalid_records", "seq_decreases", "ts_recv_non_monotonic")
# Shown, never red: a book rebuilt per contract skips the packets of the channel's other
# instruments, so its sequence jumps by more than one all the time (OrderBook.quality).
BOOK_INFO = ("seq_jumps",)
# A parity table passes only as "equal"; "empty" (nothing compared) is no pass and no difference.
PARITY_PASS, PARITY_EMPTY = "equal", "empty"
GREEN, RED, GREY, AMBER = "#1a7f37", "#cf222e", "#6e7781", "#9a6700"
COLOURS = {"ok": GREEN, "failed": RED, "missing": GREY, "empty": AMBER}


@dataclass
class Check:
    name: str
    status: str  # ok | failed | missing (not recorded) | empty (recorded, nothing compared)
    detail: str


def read_table(profile: Profile, table, columns=None) -> pd.DataFrame | None:
    if not delta_tables.exists(profile, table):
        return None
    return delta_tables.read(profile, table, columns).to_pandas()


def run_info(profile: Profile, run_id: str) -> dict:
    return run_record.read_run(Path(profile.runs_root) / run_id) or {"run_id": run_id, "status": "unknown",
                                                                      "notebooks": []}


def notebooks_table(record: dict) -> pd.DataFrame:
    """Every planned notebook: ok, failed (with where) or not run."""
    ran = {n["notebook"]: n for n in record.get("notebooks", [])}
    rows = []
    for name in record.get("planned", list(ran)):
        entry = ran.get(name, {})
        rows.append({"notebook": name, "status": entry.get("status", "not run"), "seconds": entry.get("seconds"),
                     "error": entry.get("error", ""), "log": entry.get("log", "")})
    return pd.DataFrame(rows, columns=["notebook", "status", "seconds", "error", "log"])


def bronze_files(profile: Profile) -> pd.DataFrame | None:
    """One row per file seen by Bronze: landed, skipped or quarantined, with the reason."""
    manifest = read_table(profile, INGEST_MANIFEST, ["path", "sha256", "status", "reason", "record_count",
                                                    "ingest_batch_id"])
    if manifest is None:
        return None
    return manifest.assign(sha256=manifest["sha256"].str[:16], path=shown(manifest["path"], profile)).rename(
        columns={"sha256": "sha256 (first 16)"})


def quarantine(profile: Profile) -> pd.DataFrame | None:
    rejected = read_table(profile, QUARANTINE, ["source_file", "reason", "detail", "record_index", "ingest_batch_id"])
    return None if rejected is None else rejected.assign(source_file=shown(rejected["source_file"], profile))


def shown(paths: pd.Series, profile: Profile) -> pd.Series:
    """Stored paths as the report shows them (Bronze stores them relative to the project root
    when they are inside it; a landing folder outside it is stored absolute)."""
    return paths.map(lambda p: display_path(p, profile.root))


def book_quality(profile: Profile) -> pd.DataFrame | None:
    """Quality counters per contract and session (the alarm counters and the book's size)."""
    quality = read_table(profile, BOOK_QUALITY)
    if quality is None:
        return None
    columns = ["contract_id", "session_date", "book_complete", "records", "event_groups", "locked_groups",
               *BOOK_ALARMS, *BOOK_INFO]
    return quality[columns].sort_values(["session_date", "contract_id"]).reset_index(drop=True)


def incomplete_books(quality: pd.DataFrame) -> list[str]:
    """One line per contract and session whose book never saw a clear (R) or a snapshot record
    (``book_complete`` false): it starts from nothing, as a file that starts mid-session does,
    so every order resting before its first record is missing from it."""
    rows = quality[quality["book_complete"].ne(True)]
    return [f"{r.contract_id} {r.session_date}: book incomplete, no clear (R) or snapshot record in its "
            f"{r.records:,} records (the data starts mid-session)" for r in rows.itertuples(index=False)]


def book_check(quality: pd.DataFrame | None) -> Check:
    """Red when an alarm counter is non-zero or a book is incomplete, naming which."""
    if quality is None:
        return Check("book quality", "missing", "no silver.book_quality")
    alarms = [f"{c} {int(quality[c].sum()):,}" for c in BOOK_ALARMS if quality[c].sum()]
    problems = alarms + incomplete_books(quality)
    return Check("book quality", "failed" if problems else "ok",
                 "; ".join(problems) or f"{len(quality)} contract-session(s) clean")


def style_book_quality(quality: pd.DataFrame) -> "pd.io.formats.style.Styler":
    """Non-zero alarm counters and incomplete books in red."""
    red = f"color:{RED};font-weight:bold"
    return (quality.style.map(lambda x: red if x else "", subset=list(BOOK_ALARMS))
            .map(lambda complete: "" if complete is not None and bool(complete) else red, subset=["book_complete"]))


def parity_status(entry: dict, equal: bool) -> str:
    """An entry's ``status`` (equal | different | missing | empty); a summary written before
    there was one (no ``status``) is ``equal`` or ``different`` by its ``equal``."""
    return str(entry.get("status") or ("equal" if equal else "different"))


def parity_row(check: str, entry: dict, equal: bool, rows, notes: str) -> dict:
    status = parity_status(entry, equal)
    return {"check": check, "status": status, "equal": status == PARITY_PASS, "rows": rows, "notes": notes}


def parity_results(profile: Profile, run_id: str) -> pd.DataFrame | None:
    """Engine-parity (and batch/stream-parity) summaries the run recorded (``summaries/*parity*.json``):
    one row per compared table when the summary lists them (``details``, as
    ``stages.engine_parity`` writes), else one row for the summary. ``equal`` is true only
    for ``status`` equal."""
    found = [s for name, s in run_record.stage_summaries(Path(profile.runs_root) / run_id).items() if "parity" in name.lower()]
    if not found:
        return None
    rows = []
    for s in found:
        entries = [d for d in s.get("details") or [] if isinstance(d, dict) and "equal" in d]
        if entries:
            rows += [parity_row(f"{s['stage']}: {d.get('table', d.get('stage', '?'))}", d, bool(d["equal"]),
                                d.get("rows"), d.get("notes", "")) for d in entries]
        else:
            equal = bool(s.get("equal", s.get("rows_out", 0) == s.get("rows_in")))
            rows.append(parity_row(s["stage"], s, equal, s.get("rows_out"), "; ".join(s.get("notes", []))))
    return pd.DataFrame(rows, columns=["check", "status", "equal", "rows", "notes"])


def parity_check(parity: pd.DataFrame | None) -> Check:
    """Green only when every table is equal; red when one differs or is missing; amber
    (``empty``) when the rest are equal but some compared no rows."""
    if parity is None:
        return Check("engine parity", "missing", "not recorded in this run")
    words = {"different": "differs"}
    not_passed = parity[parity["status"] != PARITY_PASS]
    detail = f"{int(parity['equal'].sum())}/{len(parity)} equal" + "".join(
        f"; {r.check} {words.get(r.status, r.status)}: {r.notes}" for r in not_passed.itertuples(index=False))
    if (not_passed["status"] != PARITY_EMPTY).any():
        return Check("engine parity", "failed", detail)
    return Check("engine parity", "empty" if len(not_passed) else "ok", detail)


def latest_snapshot(profile: Profile, model_id: str) -> tuple[Path, dict] | None:
    root = Path(profile.ml_artifacts_root) / "datasets" / model_id
    manifests = sorted(root.glob("*/manifest.json")) if root.is_dir() else []
    if not manifests:
        return None
    return manifests[-1].parent, json.loads(manifests[-1].read_text())


def champion_name(model_id: str) -> str:
    """The registered name of the 3-class setup model (as ``ml.registry.registered_model_name``)."""
    return f"{model_id}_setup_v3"


def champion(profile: Profile, model_id: str):
    """The registered champion's version (``None`` without a registry or a champion)."""
    uri = profile.mlflow_tracking_uri
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return None  # no store yet; asking MLflow would create one
    try:
        import mlflow

        mlflow.set_tracking_uri(uri)
        return mlflow.MlflowClient().get_model_version_by_alias(champion_name(model_id), "champion")
    except Exception:  # no store, no model, no alias: the chain stops before the model
        return None


def lineage_chain(profile: Profile, model_id: str) -> pd.DataFrame:
    """Raw file SHA-256 -> Bronze -> snapshot manifest (Delta versions, file SHA-256) -> model version."""
    rows = []
    files = bronze_files(profile)
    if files is not None:
        for row in files[files["status"] == "ingested"].itertuples(index=False):
            rows.append({"step": "raw file", "id": row.path, "detail": f"sha256 {row[1]}… {row.record_count:,} records"})
    snapshot = latest_snapshot(profile, model_id)
    if snapshot is not None:
        folder, manifest = snapshot
        rows.append({"step": "snapshot", "id": display_path(folder, profile.root),
                     "detail": f"{manifest['rows']:,} rows; Delta versions {manifest['delta_versions']}; "
                               f"files {manifest['files']}"})
    version = champion(profile, model_id)
    if version is not None:
        trained_on = display_path(version.tags.get("snapshot", "?"), profile.root)
        rows.append({"step": "model", "id": f"{version.name} v{version.version} (champion)",
                     "detail": f"snapshot {trained_on}; data_version "
                               f"{version.tags.get('data_version', '?')}; run {version.run_id}"})
    return pd.DataFrame(rows, columns=["step", "id", "detail"])


def checks(profile: Profile, run_id: str, model_id: str) -> list[Check]:
    record = run_info(profile, run_id)
    failed = record.get("failed")
    out = [Check("notebooks", "failed" if failed or record.get("status") != "ok" else "ok",
                 f"failed at {failed['notebook']}: {failed['error']}" if failed
                 else f"{len(record.get('notebooks', []))} notebook(s), run status {record.get('status')}")]
    files = bronze_files(profile)
    if files is None:
        out.append(Check("bronze files", "missing", "no bronze.ingest_manifest"))
    else:
        quarantined = files[files["status"] == "quarantined"]
        out.append(Check("bronze files", "failed" if len(quarantined) else "ok",
                         f"{(files['status'] == 'ingested').sum()} landed, {(files['status'] == 'skipped_duplicate').sum()} "
                         f"skipped, {len(quarantined)} quarantined"
                         + (": " + "; ".join(f"{p} ({r})" for p, r in zip(quarantined["path"], quarantined["reason"]))
                            if len(quarantined) else "")))
    out.append(book_check(book_quality(profile)))
    out.append(parity_check(parity_results(profile, run_id)))
    out.append(lineage_check(profile, model_id))
    return out


def lineage_check(profile: Profile, model_id: str) -> Check:
    """The chain holds when the snapshot's sessions were all landed from raw files and the
    champion was trained on that snapshot; a missing link is grey, a broken one red."""
    chain = lineage_chain(profile, model_id)
    steps = [s for s in ("raw file", "snapshot", "model") if s in set(chain["step"])]
    if steps != ["raw file", "snapshot", "model"]:
        return Check("lineage", "missing", " -> ".join(steps) + " (incomplete)" if steps else "nothing recorded")
    folder, manifest = latest_snapshot(profile, model_id)
    landed = read_table(profile, INGEST_MANIFEST, ["status", "session_dates"])
    days = {str(d) for dates in landed.loc[landed["status"] == "ingested", "session_dates"] for d in dates}
    not_landed = sorted(set(manifest.get("sessions", [])) - days)
    trained_on = champion(profile, model_id).tags.get("snapshot", "")
    same = (Path(profile.root) / trained_on).resolve() == folder.resolve()  # the tag is absolute or root-relative
    problems = ([f"snapshot sessions not landed from raw files: {', '.join(not_landed[:3])}"] if not_landed else []) + (
        [] if same else [f"champion trained on {display_path(trained_on, profile.root)}, "
                         f"not {display_path(folder, profile.root)}"])
    return Check("lineage", "failed" if problems else "ok",
                 "; ".join(problems) or f"raw files -> {folder.name} -> champion")


def summary_html(found: list[Check]) -> str:
    """The red / green banner at the top of the report: green only when no check failed or
    compared nothing (``empty``); a check not recorded (``missing``) stays grey."""
    overall = "failed" if any(c.status in ("failed", "empty") for c in found) else "ok"
    items = "".join(
        f'<tr><td style="background:{COLOURS[c.status]};color:white;padding:2px 8px" class="check-{c.status}">'
        f'{c.status.upper()}</td><td style="text-align:left"><b>{html.escape(c.name)}</b></td>'
        f'<td style="text-align:left">{html.escape(c.detail)}</td></tr>'
        for c in found)
    return (f'<div class="validation-summary" data-status="{overall}" style="border-left:8px solid {COLOURS[overall]};'
            f'padding:8px"><h3 style="color:{COLOURS[overall]}">{"ALL CHECKS PASSED" if overall == "ok" else "PROBLEMS FOUND"}'
            f"</h3><table>{items}</table></div>")


def highlight(frame: pd.DataFrame, column: str, bad) -> "pd.io.formats.style.Styler":
    """Rows whose ``column`` is bad in red."""
    return frame.style.apply(lambda row: [f"color:{RED};font-weight:bold" if bad(row[column]) else ""] * len(row),
                             axis=1)


def plot_book_alarms(quality: pd.DataFrame):
    import plotly.express as px

    long = quality.melt(id_vars=["contract_id", "session_date"], value_vars=list(BOOK_ALARMS), var_name="counter",
                        value_name="count").astype({"session_date": str})
    return px.bar(long, x="session_date", y="count", color="counter", facet_row="contract_id", barmode="group",
                  title="Book alarm counters per contract and session (all zero on a clean feed)")


def plot_file_statuses(files: pd.DataFrame):
    import plotly.express as px

    counts = files.groupby("status").size().rename("files").reset_index()
    return px.bar(counts, x="status", y="files", color="status", title="Bronze files by status",
                  color_discrete_map={"ingested": GREEN, "quarantined": RED, "skipped_duplicate": GREY})
