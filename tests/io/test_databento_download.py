"""mbolake.io.databento_download with a fake Historical client.

Databento's cloud API is the true outer edge of this project: these tests never reach
it. The fake stands in for ``databento.Historical`` (``metadata.get_cost`` and
``timeseries.get_range(..., path=...)``), recording every call.
"""
from __future__ import annotations

import datetime as dt
import types

import pytest

from mbolake.io import databento_download as dl


class FakeHistorical:
    def __init__(self, cost=12.34):
        self.cost_calls = []
        self.range_calls = []
        self.metadata = types.SimpleNamespace(get_cost=self._get_cost)
        self.timeseries = types.SimpleNamespace(get_range=self._get_range)
        self._cost = cost

    def _get_cost(self, **kwargs):
        self.cost_calls.append(kwargs)
        return self._cost

    def _get_range(self, *, path, **kwargs):
        self.range_calls.append({**kwargs, "path": path})
        with open(path, "wb") as f:
            f.write(b"DBN-bytes-for-" + kwargs["start"].encode())


def request(start, end, **kw) -> dl.DownloadRequest:
    base = dict(dataset="GLBX.MDP3", symbols="ES.FUT", stype_in="parent", start_date=start, end_date=end,
                underlier="ES", instrument_type="FUT")
    base.update(kw)
    return dl.DownloadRequest(**base)


@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing_api_key(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("DATABENTO_API_KEY", raising=False)
    else:
        monkeypatch.setenv("DATABENTO_API_KEY", value)
    with pytest.raises(dl.MissingApiKey) as info:
        dl.api_key()
    assert "DATABENTO_API_KEY" in str(info.value)
    with pytest.raises(dl.MissingApiKey):
        dl.client()


def test_api_key_is_stripped_and_handed_to_the_client(monkeypatch):
    import databento

    monkeypatch.setenv("DATABENTO_API_KEY", "  db-abc123  \n")
    assert dl.api_key() == "db-abc123"
    seen = []
    monkeypatch.setattr(databento, "Historical", lambda key: seen.append(key) or "client")
    assert dl.client() == "client"
    assert seen == ["db-abc123"]


def test_days_are_weekdays_inclusive():
    # Fri 2025-11-07 .. Mon 2025-11-17
    days = request(dt.date(2025, 11, 7), dt.date(2025, 11, 17)).days()
    assert days == [dt.date(2025, 11, d) for d in (7, 10, 11, 12, 13, 14, 17)]
    assert request(dt.date(2025, 11, 8), dt.date(2025, 11, 9)).days() == []
    assert request(dt.date(2025, 11, 3), dt.date(2025, 11, 3)).days() == [dt.date(2025, 11, 3)]
    assert request(dt.date(2025, 11, 4), dt.date(2025, 11, 3)).days() == []


def test_cost_estimate_passes_the_request_through():
    fake = FakeHistorical(cost="7.5")
    cost = dl.cost_estimate(fake, request(dt.date(2025, 11, 3), dt.date(2025, 11, 7)))
    assert cost == 7.5 and isinstance(cost, float)
    assert fake.cost_calls == [
        dict(dataset="GLBX.MDP3", symbols="ES.FUT", stype_in="parent", schema="mbo",
             start="2025-11-03", end="2025-11-08")  # end is exclusive: the day after end_date
    ]
    assert fake.range_calls == []


def test_download_one_file_per_weekday(tmp_path):
    fake = FakeHistorical()
    req = request(dt.date(2025, 11, 7), dt.date(2025, 11, 10))  # Fri, Sat, Sun, Mon
    paths = dl.download(fake, req, tmp_path, progress=False)
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [
        "ES/FUT/20251107/glbx-mdp3-20251107.mbo.dbn.zst",
        "ES/FUT/20251110/glbx-mdp3-20251110.mbo.dbn.zst",
    ]
    assert [c["start"] for c in fake.range_calls] == ["2025-11-07", "2025-11-10"]
    assert [c["end"] for c in fake.range_calls] == ["2025-11-08", "2025-11-11"]
    for call in fake.range_calls:
        assert call["dataset"] == "GLBX.MDP3" and call["symbols"] == "ES.FUT"
        assert call["stype_in"] == "parent" and call["schema"] == "mbo"
        assert call["path"].endswith(".partial")  # written aside, then renamed
    assert paths[0].read_bytes() == b"DBN-bytes-for-2025-11-07"
    assert paths[1].read_bytes() == b"DBN-bytes-for-2025-11-10"
    assert not (tmp_path / "ES" / "FUT" / "20251108").exists()
    assert not (tmp_path / "ES" / "FUT" / "20251109").exists()
    assert not list(tmp_path.rglob("*.partial"))


def test_download_skips_existing_files(tmp_path):
    existing = tmp_path / "TSLA" / "STK" / "20251104" / "xnas-itch-20251104.mbo.dbn.zst"
    existing.parent.mkdir(parents=True)
    existing.write_bytes(b"already here")
    fake = FakeHistorical()
    req = request(dt.date(2025, 11, 3), dt.date(2025, 11, 5), dataset="XNAS.ITCH", symbols="TSLA",
                  stype_in="raw_symbol", underlier="TSLA", instrument_type="STK")
    paths = dl.download(fake, req, str(tmp_path), progress=False)
    assert [p.name for p in paths] == [
        "xnas-itch-20251103.mbo.dbn.zst",
        "xnas-itch-20251104.mbo.dbn.zst",
        "xnas-itch-20251105.mbo.dbn.zst",
    ]
    assert [c["start"] for c in fake.range_calls] == ["2025-11-03", "2025-11-05"]
    assert existing.read_bytes() == b"already here"
    # a second run downloads nothing
    again = FakeHistorical()
    assert dl.download(again, req, tmp_path, progress=False) == paths
    assert again.range_calls == []


def test_failed_download_leaves_no_final_file(tmp_path):
    class Failing(FakeHistorical):
        def _get_range(self, *, path, **kwargs):
            with open(path, "wb") as f:
                f.write(b"half")
            raise ConnectionError("network down")

    with pytest.raises(ConnectionError):
        dl.download(Failing(), request(dt.date(2025, 11, 3), dt.date(2025, 11, 3)), tmp_path, progress=False)
    assert not (tmp_path / "ES" / "FUT" / "20251103" / "glbx-mdp3-20251103.mbo.dbn.zst").exists()
