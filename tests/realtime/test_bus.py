"""``mbolake bus start|status|stop`` on a real broker; a port in use fails naming it."""
from __future__ import annotations

import json
import socket

import pytest

from mbolake import cli
from mbolake.realtime import bus

pytestmark = pytest.mark.kafka


def test_bus_start_status_stop_from_the_command_line(project, capsys):
    port = bus.free_port()
    assert cli.main(["bus", "start", "--port", str(port)]) == 0
    assert f"127.0.0.1:{port}" in capsys.readouterr().out
    try:
        assert cli.main(["bus", "status"]) == 0
        info = json.loads(capsys.readouterr().out)
        assert info["running"] and info["port"] == port and info["state"] == str(project / "lake" / "bus")
        settings = bus.BusSettings(f"127.0.0.1:{port}")
        bus.check_bus(settings, tuple(bus.TOPICS))  # the three topics exist
        from confluent_kafka.admin import AdminClient

        topics = AdminClient(settings.producer_config()).list_topics(timeout=10).topics
        assert {name: len(topics[name].partitions) for name in bus.TOPICS} == bus.TOPICS
    finally:
        assert cli.main(["bus", "stop"]) == 0
    assert "broker stopped" in capsys.readouterr().out
    assert cli.main(["bus", "status"]) == 1


def test_a_port_in_use_fails_before_the_broker_starts(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(bus.BusError, match=f"port {s.getsockname()[1]} on 127.0.0.1 is in use"):
            bus.start(tmp_path / "state", port=s.getsockname()[1])


def test_jar_resolution_reuses_a_complete_cache_and_needs_maven_otherwise(tmp_path, monkeypatch):
    assert bus.resolve_jars() == bus.jar_dir()  # the cache `mbolake warm` filled
    monkeypatch.setattr(bus.shutil, "which", lambda name: None)
    with pytest.raises(bus.BusError, match="needs Maven"):
        bus.resolve_jars(tmp_path / "empty-cache")


def test_stream_status_without_a_name_lists_every_job(project, capsys):
    from mbolake.realtime import jobs

    assert cli.main(["stream", "status"]) == 1  # none running
    assert [row["job"] for row in json.loads(capsys.readouterr().out)] == list(jobs.JOBS)
    assert cli.main(["stream", "stop"]) == 0  # start/stop default to rt_bronze
    assert capsys.readouterr().out.strip() == "rt_bronze was not running"
