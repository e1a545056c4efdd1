"""The production path (Event Hubs' Kafka endpoint) proven locally: a broker with an extra SASL_SSL
listener (self-signed certificate, PLAIN user ``$ConnectionString``), producer and Spark source
with exactly the options of conf/azure.yaml; a wrong secret is refused with a clear error."""
from __future__ import annotations

import subprocess
from dataclasses import replace

import pytest
import yaml

from mbolake.io.dbn import read_mbo
from mbolake.realtime import bus, feed
from mbolake.realtime.bus import BusError, BusSettings

from .conftest import consume_all
from tests.helpers import REPO

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
SECRET = "Endpoint=sb://mbolake-test.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=c2VjcmV0=="


def self_signed(folder) -> tuple[str, str]:
    keystore, pem = folder / "broker.p12", folder / "ca.pem"
    common = ["-keystore", str(keystore), "-storetype", "PKCS12", "-storepass", "brokerpw"]
    subprocess.run(["keytool", "-genkeypair", "-alias", "broker", "-keyalg", "RSA", "-keysize", "2048", "-validity", "2",
                    "-dname", "CN=localhost", "-ext", "SAN=ip:127.0.0.1,dns:localhost", "-keypass", "brokerpw", *common],
                   check=True, capture_output=True)
    subprocess.run(["keytool", "-exportcert", "-rfc", "-alias", "broker", "-file", str(pem), *common], check=True,
                   capture_output=True)
    return str(keystore), str(pem)


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sasl")
    keystore, pem = self_signed(folder)
    listener = bus.SaslSslListener(bus.free_port(), keystore, "brokerpw", "$ConnectionString", SECRET)
    info = bus.start(folder / "state", port=bus.free_port(), sasl=listener)
    yield info, pem
    bus.stop(folder / "state")


def production_settings(bootstrap: str, secret: str, pem: str) -> BusSettings:
    """conf/azure.yaml's bus section as the code reads it; only the address and the test CA differ."""
    conf = yaml.safe_load((REPO / "conf" / "azure.yaml").read_text())["bus"]
    production = bus.settings_from(conf | {"namespace": "mbolake-test"}, secret=secret)
    assert production.bootstrap == "mbolake-test.servicebus.windows.net:9093"
    assert (production.security_protocol, production.sasl_mechanism, production.sasl_username) == \
        ("SASL_SSL", "PLAIN", "$ConnectionString")
    return replace(production, bootstrap=bootstrap, ssl_ca_pem=pem)


def test_producer_and_spark_source_with_the_production_options(sasl_broker, small_session, spark):
    info, pem = sasl_broker
    settings = production_settings(f"127.0.0.1:{info['sasl_ssl_port']}", SECRET, pem)
    _, records = read_mbo(small_session)
    result = feed.replay(small_session, settings, speed="max", report=None)
    assert result.sent == len(records)
    assert len(consume_all(info["bootstrap"], "mbo_raw")) == len(records)  # read back on the plaintext listener
    reader = spark.read.format("kafka")
    for key, value in settings.spark_options().items():
        reader = reader.option(key, value)
    assert "kafka.sasl.jaas.config" in settings.spark_options()
    frame = reader.option("subscribe", "mbo_raw").option("startingOffsets", "earliest").load()
    assert frame.count() == len(records)


def test_a_wrong_secret_is_refused_with_a_clear_error(sasl_broker, small_session):
    info, pem = sasl_broker
    settings = production_settings(f"127.0.0.1:{info['sasl_ssl_port']}", SECRET.replace("c2Vj", "d3Jv"), pem)
    with pytest.raises(BusError, match=r"refused the credentials of user '\$ConnectionString'"):
        feed.replay(small_session, settings, report=None)


def test_a_missing_secret_stops_before_any_connection(monkeypatch):
    monkeypatch.delenv("EVENTHUBS_CONNECTION_STRING", raising=False)
    conf = yaml.safe_load((REPO / "conf" / "azure.yaml").read_text())["bus"] | {"namespace": "x"}
    with pytest.raises(BusError, match="EVENTHUBS_CONNECTION_STRING"):
        bus.settings_from(conf)
