"""Download real MBO data from Databento's Historical API into the landing zone.

The API key comes from ``DATABENTO_API_KEY`` (environment or a .env file, never code).
The cost estimate is shown before anything is downloaded; one file per day lands in
``raw-dbn/{underlier}/{instrument_type}/{yyyymmdd}/``.
"""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from ..runtime.dotenv import load_dotenv
from .landing import day_folder


class MissingApiKey(RuntimeError):
    pass


@dataclass(frozen=True)
class DownloadRequest:
    dataset: str
    symbols: str
    stype_in: str
    start_date: dt.date
    end_date: dt.date  # inclusive
    underlier: str
    instrument_type: str
    schema: str = "mbo"

    def days(self) -> list[dt.date]:
        n = (self.end_date - self.start_date).days
        return [self.start_date + dt.timedelta(days=i) for i in range(n + 1)
                if (self.start_date + dt.timedelta(days=i)).weekday() < 5]


def api_key() -> str:
    load_dotenv()
    key = os.environ.get("DATABENTO_API_KEY", "").strip()
    if not key:
        raise MissingApiKey(
            "DATABENTO_API_KEY is not set: export it (or put it in the project's .env file, never committed) to download "
            "real data. Without a key, use notebooks/00_setup/02_generate_sample for the embedded sample."
        )
    return key


def client():
    import databento

    return databento.Historical(api_key())


def cost_estimate(historical, request: DownloadRequest) -> float:
    """USD for the whole request, from Databento's metadata endpoint (nothing is billed)."""
    return float(historical.metadata.get_cost(
        dataset=request.dataset, symbols=request.symbols, stype_in=request.stype_in, schema=request.schema,
        start=request.start_date.isoformat(), end=(request.end_date + dt.timedelta(days=1)).isoformat(),
    ))


def download(historical, request: DownloadRequest, raw_root: str | Path, progress: bool = True) -> list[Path]:
    """One ``.dbn.zst`` per weekday (UTC-midnight files, as CME's start-of-day snapshot needs)."""
    from tqdm.auto import tqdm

    paths = []
    for day in tqdm(request.days(), desc="download", unit="day", disable=not progress):
        folder = day_folder(raw_root, request.underlier, request.instrument_type, day)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{request.dataset.lower().replace('.', '-')}-{day:%Y%m%d}.{request.schema}.dbn.zst"
        if path.exists():
            paths.append(path)
            continue
        partial = path.with_name(path.name + ".partial")
        historical.timeseries.get_range(
            dataset=request.dataset, symbols=request.symbols, stype_in=request.stype_in, schema=request.schema,
            start=day.isoformat(), end=(day + dt.timedelta(days=1)).isoformat(), path=str(partial),
        )
        partial.replace(path)
        paths.append(path)
    return paths
