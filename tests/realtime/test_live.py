"""``feed live``: Databento's Live client is faked (the cloud is the outer edge); the records it yields
are real Databento objects read from Databento's own test file, and they go through the replay's
envelope and producer to a real broker."""
from __future__ import annotations

import json

import databento
import databento_dbn
import pytest

from mbolake import cli
from mbolake.realtime.bus import BusSettings
from mbolake.realtime.live import live

from .conftest import consume_all


class FakeLive:
    """Stands in for ``databento.Live``: records the subscription, yields a mapping then the MBO records."""

    subscriptions: list = []

    def __init__(self, path, key: str):
        self.key = key
        self.records = list(databento.DBNStore.from_file(str(path)))

    def subscribe(self, **kwargs):
        FakeLive.subscriptions.append(kwargs)

    def __iter__(self):
        yield databento_dbn.SymbolMappingMsg(
            publisher_id=1, instrument_id=5482, ts_event=1, stype_in=databento_dbn.SType.PARENT, stype_in_symbol="ES.FUT",
            stype_out=databento_dbn.SType.RAW_SYMBOL, stype_out_symbol="ESH1", start_ts=0, end_ts=0)
        yield from self.records


@pytest.mark.kafka
def test_live_records_go_out_as_the_replay_envelope_with_stable_keys(broker, topic, dbn_fixtures):
    path = dbn_fixtures / "test_data.mbo.v3.dbn.zst"
    settings = BusSettings(broker["bootstrap"])
    first = live(settings, "db-test", topic=topic, client_factory=lambda key: FakeLive(path, key), report=None)
    second = live(settings, "db-test", topic=topic, client_factory=lambda key: FakeLive(path, key), report=None)
    assert first.sent == second.sent == 2
    assert FakeLive.subscriptions[-1] == {"dataset": "GLBX.MDP3", "schema": "mbo", "symbols": ["ES.FUT"], "stype_in": "parent"}
    values = [json.loads(m.value()) for m in consume_all(broker["bootstrap"], topic)]
    assert len(values) == 4
    assert {v["symbol"] for v in values} == {"ESH1"} and {v["contract_id"] for v in values} == {"GLBX.MDP3:ESH1"}
    keys = [v["event_key"] for v in values]
    assert len(set(keys)) == 2 and all(k.startswith("live:") for k in keys)  # the same record sent twice: same key
    first_record = min(values, key=lambda v: v["payload"]["ts_recv"])
    assert (first_record["payload"]["ts_recv"], first_record["action"], first_record["side"], first_record["price"]) == \
        (1609160400000704060, "C", "A", 3722750000000)
    assert first_record["payload"]["source_file"] == "live:GLBX.MDP3"


def test_without_a_key_feed_live_stops_before_any_work(monkeypatch, capsys, project):
    monkeypatch.delenv("DATABENTO_API_KEY", raising=False)
    assert cli.main(["feed", "live", "--bootstrap", "127.0.0.1:1"]) == 2
    assert "DATABENTO_API_KEY" in capsys.readouterr().err
