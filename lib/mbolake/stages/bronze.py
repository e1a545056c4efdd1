"""BronzeProcessDBN: land Databento MBO files into ``bronze.mbo`` exactly and idempotently.

A file's key is the SHA-256 of its uncompressed DBN stream (``sha256``): a ``.dbn`` and any
zstd encoding of it are the same data. The file's byte hash is kept too (``file_sha256``);
manifests written before the content key hold byte hashes, and a file matches either.

Per file: the key against ``bronze.ingest_manifest`` (already ingested -> skipped), then a
streamed decode in chunks of ``chunk_records`` (bounded memory); each record's codes are
checked, the bad ones go to ``bronze.quarantine`` with their index and reason, the rest
become visible in one atomic Delta commit. That commit carries the key as a Delta
application transaction id: a second commit with the same id is refused, also when two
processes ingest the same new file at once (the loser reports ``skipped_duplicate``).
A file that fails to decode or cannot be read is quarantined whole; the next file goes on.
If a run dies between the data commit and the manifest row, the next run finds the key in
the table history and writes the full manifest row from the file's header and the Delta log.
Commit order per file: bronze.mbo, bronze.quarantine (its records), bronze.ingest_manifest.
"""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from ..core.calendar import days_to_dates
from ..core.prefetch import prefetch
from ..core.products import get_product
from ..io import delta_tables, landing
from ..io.dbn import DbnFormatError, DbnHeader, iter_mbo_chunks, read_header
from ..runtime import faults
from ..runtime.context import Context
from ..schemas import BRONZE_MBO, INGEST_MANIFEST, QUARANTINE
from .base import StageSummary
from .bronze_records import FileContext, invalid_records, to_bronze_table

SHA_KEY = "mbolake.sha256"  # commit metadata of a file's data commit: its key


def data_app_id(key: str) -> str:
    return f"mbolake.bronze.mbo:{key}"


def quarantine_app_id(key: str) -> str:
    return f"mbolake.bronze.quarantine:{key}"


@dataclass
class FileOutcome:
    path: str
    sha256: str | None
    status: str  # ingested | skipped_duplicate | quarantined | skipped_name
    reason: str = ""
    record_count: int = 0
    session_dates: list = field(default_factory=list)
    seconds: float = 0.0
    rejected_records: int = 0


def bronze_summary(batch_id: str, outcomes: list[FileOutcome], versions: dict, seconds: float) -> StageSummary:
    """A Bronze batch as the stages' summary: one details row per file, counts by status."""
    files = pd.DataFrame([f.__dict__ for f in outcomes], columns=[f.name for f in fields(FileOutcome)])
    by_status = files["status"].value_counts().to_dict()
    ingested = int(files.loc[files["status"] == "ingested", "record_count"].sum())
    rejected = int(files["rejected_records"].sum())
    notes = [f"{len(files)} file(s): " + ", ".join(f"{n} {status}" for status, n in sorted(by_status.items()))]
    if rejected:
        notes.append(f"{rejected:,} record(s) rejected by validation (in bronze.quarantine with their record_index)")
    if by_status.get("skipped_name"):
        notes.append(f"skipped_name: {landing.NAMING_RULE}")
    return StageSummary("BronzeProcessDBN", int(files["record_count"].sum()) + rejected, ingested, seconds,
                        {"batch_id": batch_id, "tables": versions}, files, notes)


class BronzeProcessDBN:
    name = "BronzeProcessDBN"
    inputs = ("raw-dbn",)
    outputs = (BRONZE_MBO.name, INGEST_MANIFEST.name, QUARANTINE.name)

    def __init__(self, chunk_records: int = 1_000_000, prefetch_depth: int = 2):
        if chunk_records < 1:
            raise ValueError(f"chunk_records must be >= 1, got {chunk_records}")
        if prefetch_depth < 1:
            raise ValueError(f"prefetch_depth must be >= 1, got {prefetch_depth}")
        self.chunk_records = chunk_records
        self.prefetch_depth = prefetch_depth

    def run(
        self,
        ctx: Context,
        *,
        underlier: str,
        instrument_type: str | None = None,
        start_date: dt.date | None = None,
        end_date: dt.date | None = None,
        files: list[str | Path] | None = None,
        progress: bool = True,
    ) -> StageSummary:
        product = get_product(underlier)
        if start_date and end_date and start_date > end_date:
            raise ValueError(f"start_date {start_date} is after end_date {end_date}")
        delta_tables.check_lake_writable(ctx.profile, (BRONZE_MBO, INGEST_MANIFEST, QUARANTINE))
        misnamed = []
        if files is None:
            root = ctx.profile.raw_dbn_root
            files = landing.discover(root, underlier, instrument_type, start_date, end_date)
            misnamed = landing.near_misses(root, underlier, instrument_type, start_date, end_date)
        started = time.perf_counter()
        known = self._known_keys(ctx)
        committed = delta_tables.commits_with_metadata(ctx.profile, BRONZE_MBO, SHA_KEY)
        itype = instrument_type or product.instrument_type
        outcomes = []
        for path in _progress(files, progress):
            outcome = self._land_one(ctx, Path(path), product, itype, known, committed)
            outcomes.append(outcome)
            if outcome.sha256:
                known.setdefault(outcome.sha256, f"sha256 {outcome.status} earlier in this run")
        for path in misnamed:
            outcomes.append(self._skip_name(ctx, Path(path), product.underlier, itype))
        versions = {t.name: delta_tables.version(ctx.profile, t) for t in (BRONZE_MBO, INGEST_MANIFEST, QUARANTINE)}
        return bronze_summary(ctx.batch_id, outcomes, versions, time.perf_counter() - started).record()

    # -- one file ---------------------------------------------------------------------

    def _known_keys(self, ctx: Context) -> dict[str, str]:
        """content or byte hash -> why it is not landed again: ingested or quarantined before."""
        manifest = delta_tables.read(ctx.profile, INGEST_MANIFEST, columns=["sha256", "file_sha256", "status", "reason"])
        known = {}
        for sha, file_sha, status, reason in manifest.to_pandas().itertuples(index=False):
            if status not in ("ingested", "quarantined"):
                continue
            why = "sha256 already ingested" if status == "ingested" else f"sha256 quarantined before ({reason})"
            for key in (sha, file_sha):
                if key and (status == "ingested" or key not in known):
                    known[key] = why
        return known

    def _land_one(self, ctx, path: Path, product, instrument_type, known: dict, committed: dict) -> FileOutcome:
        t0 = time.perf_counter()
        source = landing.lake_relative(path, ctx.profile.root)
        row = _manifest_row(source, product.underlier, instrument_type, ctx.batch_id)
        try:
            keys = landing.file_keys(path)
        except OSError as exc:  # no read permission, a dangling link, a folder with a DBN name
            detail = f"{path}: cannot be read ({type(exc).__name__}: {exc.strerror or exc})"
            _quarantine(ctx, source, "unreadable", detail)
            outcome = FileOutcome(source, None, "quarantined", f"unreadable: {detail}")
            return self._finish(ctx, row, outcome, t0)
        row.update(sha256=keys.content, file_sha256=keys.file, bytes=path.stat().st_size)
        seen = known.get(keys.content) or known.get(keys.file)
        version = committed.get(keys.content, committed.get(keys.file))
        if seen:
            outcome = FileOutcome(source, keys.content, "skipped_duplicate", seen)
        elif version is not None:
            outcome = self._recover(ctx, path, source, keys.content, int(version), row)
        else:
            outcome = self._ingest(ctx, path, source, keys.content, product, row)
        return self._finish(ctx, row, outcome, t0)

    def _finish(self, ctx, row: dict, outcome: FileOutcome, t0: float) -> FileOutcome:
        outcome.seconds = time.perf_counter() - t0
        row.update(status=outcome.status, reason=outcome.reason, record_count=outcome.record_count,
                   session_dates=outcome.session_dates, rejected_records=outcome.rejected_records,
                   finished_at=time.time_ns())
        delta_tables.append(ctx.profile, INGEST_MANIFEST, pa.Table.from_pylist([row], schema=INGEST_MANIFEST.schema))
        return outcome

    def _skip_name(self, ctx, path: Path, underlier: str, instrument_type: str) -> FileOutcome:
        source = landing.lake_relative(path, ctx.profile.root)
        outcome = FileOutcome(source, None, "skipped_name", f"not landed: {landing.NAMING_RULE}")
        return self._finish(ctx, _manifest_row(source, underlier, instrument_type, ctx.batch_id), outcome, time.perf_counter())

    def _ingest(self, ctx, path: Path, source: str, key: str, product, row: dict) -> FileOutcome:
        counted = {"records": 0, "days": set(), "error": None}
        rejected: list[tuple[int, str]] = []
        try:
            header = read_header(path)
            row.update(_header_fields(header))
            file_ctx = FileContext(header, product, source, ctx.batch_id, time.time_ns())

            def batches():
                try:
                    offset = 0
                    for _, records in iter_mbo_chunks(path, self.chunk_records):
                        bad, reasons = invalid_records(records)
                        rejected.extend(zip((offset + bad).tolist(), reasons))
                        keep = None if not bad.size else np.isin(np.arange(len(records)), bad, invert=True)
                        table = to_bronze_table(records, file_ctx, offset, keep)
                        offset += len(records)
                        counted["records"] += table.num_rows
                        counted["days"].update(np.unique(table.column("session_date").cast(pa.int32()).to_numpy()).tolist())
                        yield from table.to_batches()
                    if offset == 0:
                        raise DbnFormatError(f"{path}: the file holds no records", "empty")
                    if counted["records"] == 0:
                        raise DbnFormatError(f"{path}: all {offset} records fail validation; the first: {rejected[0][1]}",
                                             "invalid_records")
                    faults.reach("bronze.before_data_commit")
                except Exception as exc:
                    counted["error"] = exc  # the writer aborts the commit and re-raises it wrapped
                    raise

            delta_tables.append(ctx.profile, BRONZE_MBO, prefetch(batches(), depth=self.prefetch_depth),
                                commit_metadata={SHA_KEY: key, "mbolake.source_file": source}, app_id=data_app_id(key))
        except delta_tables.AlreadyCommitted as exc:
            return FileOutcome(source, key, "skipped_duplicate", f"sha256 landed by another ingest ({exc})")
        except delta_tables.LakeNotWritable:
            raise
        except Exception as exc:  # any failure of this file: quarantine it, keep the run going
            exc = counted["error"] or exc
            reason = exc.reason if isinstance(exc, DbnFormatError) else type(exc).__name__
            _quarantine(ctx, source, reason, str(exc), key=key)
            return FileOutcome(source, key, "quarantined", f"{reason}: {exc}")
        faults.reach("bronze.after_data_commit")
        _quarantine_records(ctx, source, key, rejected)
        days = days_to_dates(sorted(counted["days"]))
        return FileOutcome(source, key, "ingested", "", counted["records"], days, rejected_records=len(rejected))

    def _recover(self, ctx, path: Path, source: str, key: str, version: int, row: dict) -> FileOutcome:
        """The rows of this file were committed (``version``) by a run that died before its
        manifest row: rebuild that row from the header and the Delta log, and write the
        rejected records if the run died before their quarantine commit."""
        header = read_header(path)
        row.update(_header_fields(header))
        records, days = delta_tables.rows_added_in(ctx.profile, BRONZE_MBO, version, "session_date")
        rejected = self._rejected_of(path)
        _quarantine_records(ctx, source, key, rejected)
        return FileOutcome(source, key, "ingested",
                           f"recovered: rows committed in bronze.mbo version {version}, manifest row was missing",
                           records, list(days), rejected_records=len(rejected))

    def _rejected_of(self, path: Path) -> list[tuple[int, str]]:
        rejected, offset = [], 0
        for _, records in iter_mbo_chunks(path, self.chunk_records):
            bad, reasons = invalid_records(records)
            rejected.extend(zip((offset + bad).tolist(), reasons))
            offset += len(records)
        return rejected


def _header_fields(header: DbnHeader) -> dict:
    return dict(dbn_version=header.version, dataset=header.dataset, schema=header.schema,
                start=header.start, end=header.end)


def _manifest_row(source: str, underlier: str, instrument_type: str, batch_id: str) -> dict:
    return dict(
        path=source, sha256=None, bytes=None, dbn_version=None, dataset=None, schema=None,
        start=None, end=None, underlier=underlier, instrument_type=instrument_type, session_dates=[],
        record_count=0, ingest_batch_id=batch_id, status=None, reason=None, started_at=time.time_ns(),
        finished_at=None, file_sha256=None, rejected_records=0,
    )


def _quarantine(ctx: Context, source: str, reason: str, detail: str, key: str | None = None) -> None:
    """A whole file. With its key the row is written once, also when a run dies after it."""
    row = dict(source_file=source, reason=reason, detail=detail, ingest_batch_id=ctx.batch_id, time=time.time_ns(),
               sha256=key, record_index=None)
    try:
        delta_tables.append(ctx.profile, QUARANTINE, pa.Table.from_pylist([row], schema=QUARANTINE.schema),
                            app_id=quarantine_app_id(key) if key else None)
    except delta_tables.AlreadyCommitted:
        pass
    faults.reach("bronze.after_quarantine_commit")


def _quarantine_records(ctx: Context, source: str, key: str, rejected: list[tuple[int, str]]) -> None:
    """The records of a landed file that failed validation, in one commit keyed by the file."""
    if not rejected:
        return
    now = time.time_ns()
    table = pa.table({
        "source_file": pa.array([source] * len(rejected), pa.string()),
        "reason": pa.array(["invalid_record"] * len(rejected), pa.string()),
        "detail": pa.array([reason for _, reason in rejected], pa.string()),
        "ingest_batch_id": pa.array([ctx.batch_id] * len(rejected), pa.string()),
        "time": pa.array(np.full(len(rejected), now, dtype=np.int64)),
        "sha256": pa.array([key] * len(rejected), pa.string()),
        "record_index": pa.array([index for index, _ in rejected], pa.int64()),
    })
    try:
        delta_tables.append(ctx.profile, QUARANTINE, table, app_id=quarantine_app_id(key))
    except delta_tables.AlreadyCommitted:
        pass
    faults.reach("bronze.after_quarantine_commit")


def _progress(items, enabled: bool):
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc="BronzeProcessDBN", unit="file")
