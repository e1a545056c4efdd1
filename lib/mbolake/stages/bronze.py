"""BronzeProcessDBN: land Databento MBO files into ``bronze.mbo`` exactly and idempotently.

Per file: SHA-256 against ``bronze.ingest_manifest`` (already ingested -> skipped), then a
streamed decode in chunks of ``chunk_records`` (bounded memory), each chunk converted to
Arrow and written; the file's rows become visible in one atomic Delta commit that
carries the file's SHA-256 in its commit metadata. A file that fails to decode is
written to ``bronze.quarantine`` and the manifest with its reason; the next file goes on.
If a run dies between the data commit and the manifest row, the next run finds the
SHA-256 in the table history and records the file as ingested instead of landing it twice.
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
from ..io.dbn import DbnFormatError, iter_mbo_chunks, read_header
from ..runtime.context import Context
from ..schemas import BRONZE_MBO, INGEST_MANIFEST, QUARANTINE
from .base import StageSummary
from .bronze_records import FileContext, to_bronze_table

SHA_KEY = "mbolake.sha256"


@dataclass
class FileOutcome:
    path: str
    sha256: str
    status: str  # ingested | skipped_duplicate | quarantined
    reason: str = ""
    record_count: int = 0
    session_dates: list = field(default_factory=list)
    seconds: float = 0.0


def bronze_summary(batch_id: str, outcomes: list[FileOutcome], versions: dict, seconds: float) -> StageSummary:
    """A Bronze batch as the stages' summary: one details row per file, counts by status."""
    files = pd.DataFrame([f.__dict__ for f in outcomes], columns=[f.name for f in fields(FileOutcome)])
    by_status = files["status"].value_counts().to_dict()
    ingested = int(files.loc[files["status"] == "ingested", "record_count"].sum())
    return StageSummary("BronzeProcessDBN", int(files["record_count"].sum()), ingested, seconds,
                        {"batch_id": batch_id, "tables": versions}, files,
                        [f"{len(files)} file(s): " + ", ".join(f"{n} {status}" for status, n in sorted(by_status.items()))])


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
        if files is None:
            files = landing.discover(ctx.profile.raw_dbn_root, underlier, instrument_type, start_date, end_date)
        started = time.perf_counter()
        known = self._known_hashes(ctx)
        committed = delta_tables.commits_with_metadata(ctx.profile, BRONZE_MBO, SHA_KEY)
        outcomes = []
        for path in _progress(files, progress):
            outcome = self._land_one(ctx, Path(path), product, instrument_type or product.instrument_type, known, committed)
            outcomes.append(outcome)
            known.setdefault(outcome.sha256, f"sha256 {outcome.status} earlier in this run")
        versions = {t.name: delta_tables.version(ctx.profile, t) for t in (BRONZE_MBO, INGEST_MANIFEST, QUARANTINE)}
        return bronze_summary(ctx.batch_id, outcomes, versions, time.perf_counter() - started)

    # -- one file ---------------------------------------------------------------------

    def _known_hashes(self, ctx: Context) -> dict[str, str]:
        """sha256 -> why it is not landed again: ingested before, or quarantined before (and why)."""
        manifest = delta_tables.read(ctx.profile, INGEST_MANIFEST, columns=["sha256", "status", "reason"]).to_pandas()
        known = {}
        for sha, status, reason in manifest[manifest["status"] != "skipped_duplicate"].itertuples(index=False):
            if status == "ingested" or sha not in known:
                known[sha] = "sha256 already ingested" if status == "ingested" else f"sha256 quarantined before ({reason})"
        return known

    def _land_one(self, ctx, path: Path, product, instrument_type, known: dict, committed: dict) -> FileOutcome:
        started_ns = time.time_ns()
        t0 = time.perf_counter()
        source = landing.lake_relative(path, ctx.profile.root)
        sha = landing.sha256_of(path)
        row = _manifest_row(path, source, sha, product.underlier, instrument_type, ctx.batch_id, started_ns)
        if sha in known:
            outcome = FileOutcome(source, sha, "skipped_duplicate", known[sha])
        elif sha in committed:
            outcome = FileOutcome(
                source, sha, "ingested", f"recovered: rows committed in bronze.mbo version {committed[sha]}, manifest row was missing"
            )
        else:
            outcome = self._ingest(ctx, path, source, sha, product, row)
        outcome.seconds = time.perf_counter() - t0
        row.update(status=outcome.status, reason=outcome.reason, record_count=outcome.record_count,
                   session_dates=outcome.session_dates, finished_at=time.time_ns())
        delta_tables.append(ctx.profile, INGEST_MANIFEST, pa.Table.from_pylist([row], schema=INGEST_MANIFEST.schema))
        return outcome

    def _ingest(self, ctx, path: Path, source: str, sha: str, product, row: dict) -> FileOutcome:
        counted = {"records": 0, "days": set(), "error": None}
        try:
            header = read_header(path)
            row.update(dbn_version=header.version, dataset=header.dataset, schema=header.schema,
                       start=header.start, end=header.end)
            file_ctx = FileContext(header, product, source, ctx.batch_id, time.time_ns())

            def batches():
                try:
                    for _, records in iter_mbo_chunks(path, self.chunk_records):
                        table = to_bronze_table(records, file_ctx, counted["records"])
                        counted["records"] += len(records)
                        counted["days"].update(np.unique(table.column("session_date").cast(pa.int32()).to_numpy()).tolist())
                        yield from table.to_batches()
                    if counted["records"] == 0:
                        raise DbnFormatError(f"{path}: the file holds no records", "empty")
                except Exception as exc:
                    counted["error"] = exc  # the writer aborts the commit and re-raises it wrapped
                    raise

            delta_tables.append(ctx.profile, BRONZE_MBO, prefetch(batches(), depth=self.prefetch_depth),
                                commit_metadata={SHA_KEY: sha, "mbolake.source_file": source})
        except Exception as exc:  # any failure of this file: quarantine it, keep the run going
            exc = counted["error"] or exc
            reason = exc.reason if isinstance(exc, DbnFormatError) else type(exc).__name__
            detail = str(exc)
            _quarantine(ctx, source, reason, detail)
            return FileOutcome(source, sha, "quarantined", f"{reason}: {detail}")
        days = days_to_dates(sorted(counted["days"]))
        return FileOutcome(source, sha, "ingested", "", counted["records"], days)


def _manifest_row(path: Path, source: str, sha: str, underlier: str, instrument_type: str, batch_id: str, started_ns: int) -> dict:
    return dict(
        path=source, sha256=sha, bytes=path.stat().st_size, dbn_version=None, dataset=None, schema=None,
        start=None, end=None, underlier=underlier, instrument_type=instrument_type, session_dates=[],
        record_count=0, ingest_batch_id=batch_id, status=None, reason=None, started_at=started_ns, finished_at=None,
    )


def _quarantine(ctx: Context, source: str, reason: str, detail: str) -> None:
    row = dict(source_file=source, reason=reason, detail=detail, ingest_batch_id=ctx.batch_id, time=time.time_ns())
    delta_tables.append(ctx.profile, QUARANTINE, pa.Table.from_pylist([row], schema=QUARANTINE.schema))


def _progress(items, enabled: bool):
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc="BronzeProcessDBN", unit="file")
