"""Feeds onto ``mbo_raw``: the replay of DBN files (paced by ``ts_recv``) and Databento Live.

Replay resumes without duplicates: after each chunk is acknowledged by the broker the feed
records, per file SHA-256, how many records it has sent (``progress_file``); a killed replay
starts again after the last acknowledged chunk. A chunk sent but not yet recorded when the feed
was killed goes out again with the same ``event_key``s, and streaming Bronze lands it once.

The progress file also keeps, per file, the last ``ts_recv`` sent per contract-session: the
cut-off up to which the stream must have produced its rows once it has consumed everything
(``ReplayResult.last_ts_recv``, the batch/stream parity's ``sent``); a resumed replay still
knows what its earlier runs sent.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.calendar import NS_PER_DAY, local_ns
from ..core.products import get_product
from ..io import landing
from ..io.dbn import iter_mbo_chunks, read_header
from ..runtime.atomic_files import write_json_atomic
from ..stages.bronze_records import FileContext, to_bronze_table
from . import envelope
from .bus import BusSettings
from .producer import BusProducer

NS_PER_MINUTE = 60 * 1_000_000_000


@dataclass
class ReplayResult:
    files: int
    sent: int
    resumed_from: dict
    seconds: float
    last_ts_recv: dict[tuple[str, dt.date], int]  # (contract_id, session_date) -> last ts_recv sent

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


def parse_speed(text: str | float | None) -> float | None:
    """``1``, ``10`` (times real time) or ``max`` (None: no pacing)."""
    if text is None or str(text).lower() == "max":
        return None
    try:
        speed = float(text)
    except ValueError:
        speed = 0.0
    if speed <= 0:
        raise ValueError(f"--speed must be a positive number (1, 10) or 'max', got {text!r}")
    return speed


def parse_clock(text: str | None, name: str) -> int | None:
    """``HH:MM`` -> minutes after midnight in the product's time zone."""
    if text is None:
        return None
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", text.strip())
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ValueError(f"{name} must be HH:MM (e.g. 09:30), got {text!r}")
    return int(match.group(1)) * 60 + int(match.group(2))


def dbn_files(target: str | Path) -> list[Path]:
    """A DBN file, or every ``*.dbn``/``*.dbn.zst`` under a folder (sorted)."""
    target = Path(target)
    if target.is_file():
        return [target]
    if target.is_dir():
        files = sorted(p for p in target.rglob("*") if p.is_file() and (p.name.endswith(".dbn") or p.name.endswith(".dbn.zst")))
        if not files:
            raise FileNotFoundError(f"no .dbn or .dbn.zst files under {target}")
        return files
    raise FileNotFoundError(f"replay input {target} does not exist")


class Progress:
    """``{sha256: {"path", "sent", "finished", "last_ts_recv": {session_date: {contract_id: ts_recv}}}}``
    in a JSON file, replaced atomically after each chunk."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path else None
        self.data = json.loads(self.path.read_text()) if self.path and self.path.exists() else {}

    def sent(self, sha: str) -> int:
        return int(self.data.get(sha, {}).get("sent", 0))

    def last_ts_recv(self, sha: str) -> dict[tuple[str, dt.date], int]:
        by_session = self.data.get(sha, {}).get("last_ts_recv", {})
        return {(contract, dt.date.fromisoformat(session)): int(ts)
                for session, contracts in by_session.items() for contract, ts in contracts.items()}

    def record(self, sha: str, path: Path, sent: int, finished: bool = False,
               last_ts_recv: dict[tuple[str, dt.date], int] | None = None) -> None:
        by_session: dict[str, dict[str, int]] = {}
        for (contract, session), ts in sorted((last_ts_recv or {}).items()):
            by_session.setdefault(session.isoformat(), {})[contract] = ts
        self.data[sha] = {"path": str(path), "sent": sent, "finished": finished, "last_ts_recv": by_session}
        if self.path:
            write_json_atomic(self.path, self.data, indent=1)


class _Reporter:
    def __init__(self, report, every: float = 2.0):
        self.report, self.every = report, every
        self.started = self.last = time.perf_counter()
        self.sent = 0

    def add(self, n: int, name: str, force: bool = False) -> None:
        self.sent += n
        now = time.perf_counter()
        if self.report and (force or now - self.last >= self.every):
            self.last = now
            rate = self.sent / max(now - self.started, 1e-9)
            self.report(f"{name}: {self.sent:,} events sent, {rate:,.0f} ev/s")


def replay(
    target: str | Path,
    settings: BusSettings,
    *,
    underlier: str = "ES",
    instrument_type: str | None = None,
    speed: str | float | None = None,
    start: str | None = None,
    end: str | None = None,
    progress_file: str | Path | None = None,
    project_root: str | Path | None = None,
    topic: str = "mbo_raw",
    chunk_records: int = 50_000,
    report=print,
) -> ReplayResult:
    """Publish the records of DBN file(s) in file order as envelopes; see the module doc."""
    product = get_product(underlier)
    pace = parse_speed(speed)
    window = (parse_clock(start, "--from"), parse_clock(end, "--to"))
    if chunk_records < 1:
        raise ValueError(f"chunk_records must be >= 1, got {chunk_records}")
    files = dbn_files(target)
    for path in files:
        read_header(path)  # a file that is not DBN fails here, before anything is sent
    producer = BusProducer(settings, topic)
    progress = Progress(progress_file)
    reporter = _Reporter(report)
    started, resumed, last_ts_recv = time.perf_counter(), {}, {}
    clock = _Pacer(pace)
    for path in files:
        sha = landing.sha256_of(path)
        done = progress.sent(sha)
        file_last = progress.last_ts_recv(sha)
        if done:
            resumed[str(path)] = done
        source = landing.lake_relative(path, project_root or Path.cwd())
        first = 0
        for header, records in iter_mbo_chunks(path, chunk_records):
            n = len(records)
            if first + n > done:
                ctx = FileContext(header, product, source, "feed", time.time_ns())
                table = to_bronze_table(records, ctx, first)
                table = table.slice(max(done - first, 0))
                table = _in_window(table, product.timezone, window)
                pairs = envelope.encode(table, sha[:16])
                clock.send(producer, pairs, table.column("ts_recv").to_numpy())
                producer.flush()
                reporter.add(len(pairs), path.name)
                _merge_last(file_last, _last_ts_recv(table))
                progress.record(sha, path, first + n, last_ts_recv=file_last)
            first += n
        progress.record(sha, path, first, finished=True, last_ts_recv=file_last)
        _merge_last(last_ts_recv, file_last)
    reporter.add(0, "replay", force=True)
    return ReplayResult(len(files), reporter.sent, resumed, time.perf_counter() - started, last_ts_recv)


def _last_ts_recv(table) -> dict[tuple[str, dt.date], int]:
    """The last ``ts_recv`` of ``bronze.mbo`` rows per (contract_id, session_date)."""
    if table.num_rows == 0:
        return {}
    last = table.select(["contract_id", "session_date", "ts_recv"]).group_by(["contract_id", "session_date"]) \
        .aggregate([("ts_recv", "max")])
    return {(c, d): int(ts) for c, d, ts in zip(last.column("contract_id").to_pylist(),
                                                last.column("session_date").to_pylist(),
                                                last.column("ts_recv_max").to_pylist())}


def _merge_last(into: dict, more: dict) -> None:
    for key, ts in more.items():
        into[key] = max(into.get(key, ts), ts)


def _in_window(table, tz: str, window: tuple[int | None, int | None]):
    start, end = window
    if start is None and end is None or table.num_rows == 0:
        return table
    minute = (local_ns(table.column("ts_recv").to_numpy(), tz) % NS_PER_DAY) // NS_PER_MINUTE
    keep = np.ones(len(minute), dtype=bool)
    if start is not None:
        keep &= minute >= start
    if end is not None:
        keep &= minute < end
    return table.filter(keep)


class _Pacer:
    """Sends so that ``ts_recv`` gaps become wall-clock gaps divided by ``speed`` (None: as fast as possible)."""

    def __init__(self, speed: float | None):
        self.speed = speed
        self.origin: tuple[float, int] | None = None

    def send(self, producer: BusProducer, pairs: list, ts_recv: np.ndarray) -> None:
        if self.speed is None or not pairs:
            producer.send(pairs)
            return
        if self.origin is None:
            self.origin = (time.perf_counter(), int(ts_recv[0]))
        wall0, ts0 = self.origin
        i, n = 0, len(pairs)
        while i < n:
            # every record whose time has come goes out now; then sleep until the next one is due
            now_ts = ts0 + (time.perf_counter() - wall0) * self.speed * 1e9
            j = max(int(np.searchsorted(ts_recv, now_ts, side="right")), i)
            if j > i:
                producer.send(pairs[i:j])
                i = j
            else:
                time.sleep(min((int(ts_recv[i]) - now_ts) / 1e9 / self.speed, 0.5))
