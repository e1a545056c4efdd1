"""The event bus: a single-node Apache Kafka broker (KRaft) started by the project, or Event Hubs'
Kafka endpoint in production; the same producer and Spark options talk to both.

The broker's jars come from Maven Central once (``mvn dependency:copy-dependencies`` from a
generated pom, its own Maven repository folder) and are cached in ``~/.cache/mbolake/kafka``.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ..runtime.atomic_files import write_json_atomic
from ..runtime.processes import alive, stop_process

KAFKA_VERSION = "4.1.1"
SLF4J_VERSION = "2.0.17"
LOG4J_VERSION = "2.24.3"
CACHE = Path(os.environ.get("MBOLAKE_KAFKA_CACHE", "~/.cache/mbolake/kafka")).expanduser()
# Topics are the blueprint's Event Hubs; messages are keyed by contract so one contract's events
# stay in order in one partition.
TOPICS = {"mbo_raw": 4, "features_gold": 1, "inference_scores": 1}
BROKER_HEAP = "-Xmx512m"

_POM = f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>mbolake</groupId><artifactId>kafka-broker</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>{KAFKA_VERSION}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>{SLF4J_VERSION}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>{LOG4J_VERSION}</version></dependency>
  </dependencies>
</project>
"""
_REQUIRED_JARS = (f"kafka_2.13-{KAFKA_VERSION}.jar", f"kafka-clients-{KAFKA_VERSION}.jar",
                  f"log4j-slf4j2-impl-{LOG4J_VERSION}.jar", f"log4j-core-{LOG4J_VERSION}.jar")
_LOG4J = """rootLogger.level = {level}
rootLogger.appenderRef.file.ref = file
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d{{HH:mm:ss}} %p %c{{1}}: %m%n
"""


class BusError(RuntimeError):
    """The bus cannot be used: unreachable broker, refused credentials, unknown topic, no jars."""


# -- the broker's jars -------------------------------------------------------------------


def jar_dir(cache: Path = CACHE) -> Path:
    return cache / f"kafka-{KAFKA_VERSION}"


def resolve_jars(cache: Path = CACHE, quiet: bool = True) -> Path:
    """The folder of the broker's jars; resolved from Maven Central with ``mvn`` the first time."""
    jars = jar_dir(cache)
    if all((jars / name).exists() for name in _REQUIRED_JARS):
        return jars
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BusError("resolving the Kafka broker jars needs Maven (`mvn` on PATH); install it (apt-get install maven)")
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "pom.xml").write_text(_POM)
    partial = cache / f"kafka-{KAFKA_VERSION}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    cmd = [mvn, "-B", *(["-q"] if quiet else []), "-f", str(cache / "pom.xml"), f"-Dmaven.repo.local={cache / 'm2'}",
           "dependency:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={partial}"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise BusError(f"mvn could not resolve org.apache.kafka:kafka_2.13:{KAFKA_VERSION}:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
    shutil.rmtree(jars, ignore_errors=True)
    partial.rename(jars)  # whole or not at all: a killed resolve leaves only the .partial folder
    return jars


# -- connection settings -----------------------------------------------------------------


@dataclass(frozen=True)
class BusSettings:
    """How a producer or the Spark source reaches the bus. ``secret`` is the SASL password (Event
    Hubs: the namespace connection string), read from the environment, never from a file."""

    bootstrap: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    secret: str | None = field(default=None, repr=False)
    ssl_ca_pem: str | None = None  # trust for a self-signed broker certificate (tests only; PEM, both clients)

    def producer_config(self) -> dict:
        conf = {"bootstrap.servers": self.bootstrap, "security.protocol": self.security_protocol}
        if self.sasl_mechanism:
            conf.update({"sasl.mechanism": self.sasl_mechanism, "sasl.username": self.sasl_username or "",
                         "sasl.password": self.secret or ""})
        if self.ssl_ca_pem:
            conf["ssl.ca.location"] = self.ssl_ca_pem
        return conf

    def spark_options(self) -> dict:
        """Options of Spark's Kafka source (``kafka.*`` pass through to the Java client)."""
        opts = {"kafka.bootstrap.servers": self.bootstrap, "kafka.security.protocol": self.security_protocol}
        if self.sasl_mechanism:
            user = (self.sasl_username or "").replace('"', '\\"')
            password = (self.secret or "").replace('"', '\\"')
            opts["kafka.sasl.mechanism"] = self.sasl_mechanism
            opts["kafka.sasl.jaas.config"] = (
                "org.apache.kafka.common.security.plain.PlainLoginModule required "
                f'username="{user}" password="{password}";'
            )
        if self.ssl_ca_pem:
            opts["kafka.ssl.truststore.location"] = self.ssl_ca_pem
            opts["kafka.ssl.truststore.type"] = "PEM"
        return opts


def settings_from(bus: dict, bootstrap: str | None = None, secret: str | None = None) -> BusSettings:
    """The ``bus`` section of a profile as settings; ``bootstrap`` overrides the profile's address."""
    kind = bus.get("kind", "kafka")
    if kind == "kafka":
        address = bootstrap or f"{bus.get('host', '127.0.0.1')}:{int(bus.get('port', 9092))}"
        return BusSettings(address)
    if kind == "eventhubs_kafka":
        address = bootstrap or f"{bus['namespace']}.servicebus.windows.net:{int(bus.get('port', 9093))}"
        env = bus.get("secret_env", "EVENTHUBS_CONNECTION_STRING")
        secret = secret if secret is not None else os.environ.get(env)
        if not secret:
            raise BusError(f"the Event Hubs connection string is missing: set {env} (from Key Vault / the secret scope)")
        return BusSettings(address, bus.get("security_protocol", "SASL_SSL"), bus.get("sasl_mechanism", "PLAIN"),
                           bus.get("sasl_username", "$ConnectionString"), secret)
    raise BusError(f"bus.kind {kind!r} is not supported (kafka or eventhubs_kafka)")


def check_bus(settings: BusSettings, topics: tuple[str, ...] = (), timeout: float = 10.0) -> None:
    """Fail early, naming the broker or topic, when the bus cannot be used."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    errors: list[str] = []
    conf = settings.producer_config() | {"error_cb": lambda err: errors.append(str(err)), "log_level": 0,
                                         "socket.timeout.ms": int(timeout * 1000)}
    admin = AdminClient(conf)
    try:
        meta = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        admin.poll(1.0)  # serves the error callbacks: the reason (refused SASL, TLS, connection) is in them
        detail = "; ".join(dict.fromkeys(errors)) or str(exc)
        if "SASL" in detail or "uthenticat" in detail:
            raise BusError(f"broker {settings.bootstrap} refused the credentials of user {settings.sasl_username!r}: {detail}") from None
        raise BusError(f"broker {settings.bootstrap} is unreachable: {detail}") from None
    missing = [t for t in topics if t not in meta.topics]
    if missing:
        raise BusError(f"topic(s) {', '.join(missing)} do not exist on {settings.bootstrap} (known: {', '.join(sorted(meta.topics))})")


def ensure_topics(settings: BusSettings, topics: dict[str, int] = TOPICS) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(settings.producer_config())
    existing = admin.list_topics(timeout=10).topics
    new = [NewTopic(name, num_partitions=n, replication_factor=1) for name, n in topics.items() if name not in existing]
    for name, future in (admin.create_topics(new) if new else {}).items():
        try:
            future.result(30)
        except Exception as exc:  # created concurrently by someone else is fine
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise BusError(f"cannot create topic {name}: {exc}") from exc
    # the broker's metadata cache learns of new topics from the controller a moment later
    deadline = time.time() + 30
    while new and time.time() < deadline:
        if all(t.topic in admin.list_topics(timeout=10).topics for t in new):
            return
        time.sleep(0.2)


# -- the local broker ----------------------------------------------------------------------


@dataclass(frozen=True)
class SaslSslListener:
    """An extra SASL_SSL listener like Event Hubs' endpoint: PLAIN user ``username``/``password``."""

    port: int
    keystore: str  # PKCS12 with the broker's key and certificate
    keystore_password: str
    username: str = "$ConnectionString"
    password: str = field(default="", repr=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _properties(state: Path, port: int, controller_port: int, sasl: SaslSslListener | None) -> str:
    listeners = [f"PLAINTEXT://127.0.0.1:{port}", f"CONTROLLER://127.0.0.1:{controller_port}"]
    advertised = [f"PLAINTEXT://127.0.0.1:{port}"]
    lines = [
        "process.roles=broker,controller", "node.id=1", f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
        "controller.listener.names=CONTROLLER", "inter.broker.listener.name=PLAINTEXT",
        f"log.dirs={state / 'data'}", "num.partitions=1", "auto.create.topics.enable=false",
        "offsets.topic.replication.factor=1", "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1", "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1", "group.initial.rebalance.delay.ms=0",
        # Replayed sessions carry old event times; the broker keeps messages until deleted.
        "log.retention.ms=-1", "offsets.topic.num.partitions=4",
    ]
    protocols = "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    if sasl:
        listeners.append(f"SASL_SSL://127.0.0.1:{sasl.port}")
        advertised.append(f"SASL_SSL://127.0.0.1:{sasl.port}")
        protocols += ",SASL_SSL:SASL_SSL"
        user, password = sasl.username.replace('"', '\\"'), sasl.password.replace('"', '\\"')
        prefix = "listener.name.sasl_ssl."
        lines += [
            f"{prefix}sasl.enabled.mechanisms=PLAIN",
            f"{prefix}plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'user_{user}="{password}";',
            f"{prefix}ssl.keystore.location={sasl.keystore}", f"{prefix}ssl.keystore.password={sasl.keystore_password}",
            f"{prefix}ssl.keystore.type=PKCS12",
        ]
    lines += [f"listeners={','.join(listeners)}", f"advertised.listeners={','.join(advertised)}",
              f"listener.security.protocol.map={protocols}"]
    return "\n".join(lines) + "\n"


def _java(jars: Path, state: Path, main: list[str]) -> list[str]:
    return ["java", BROKER_HEAP, "-Xms256m", "-XX:+UseG1GC", f"-Dlog4j2.configurationFile={state / 'log4j2.properties'}",
            "-cp", f"{jars}/*", *main]


def _read_state(state: Path) -> dict | None:
    info = state / "broker.json"
    return json.loads(info.read_text()) if info.exists() else None


def status(state: str | Path) -> dict:
    """``{"running": bool, "pid", "port", ...}`` of the broker whose state folder is ``state``."""
    info = _read_state(Path(state))
    if not info:
        return {"running": False, "state": str(state)}
    return info | {"running": alive(info["pid"]), "state": str(state)}


def start(state: str | Path, port: int = 9092, controller_port: int | None = None, sasl: SaslSslListener | None = None,
          timeout: float = 90.0, topics: dict[str, int] = TOPICS) -> dict:
    """Start the broker (formatting its storage the first time), wait until it answers, create
    the topics. Idempotent: a broker already running from ``state`` is left alone."""
    state = Path(state).resolve()
    current = status(state)
    if current["running"]:
        return current
    _check_port_free(port)
    jars = resolve_jars()
    state.mkdir(parents=True, exist_ok=True)
    controller_port = controller_port or free_port()
    props = state / "server.properties"
    props.write_text(_properties(state, port, controller_port, sasl))
    (state / "log4j2.properties").write_text(_LOG4J.format(level="INFO", log=state / "broker.log"))
    if not (state / "data" / "meta.properties").exists():
        cluster = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        done = subprocess.run(_java(jars, state, ["kafka.tools.StorageTool", "format", "-t", cluster, "-c", str(props)]),
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise BusError(f"formatting the broker storage in {state / 'data'} failed: {done.stdout}{done.stderr}")
    out = open(state / "broker.out", "ab")
    proc = subprocess.Popen(_java(jars, state, ["kafka.Kafka", str(props)]), stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    info = {"pid": proc.pid, "port": port, "controller_port": controller_port, "bootstrap": f"127.0.0.1:{port}",
            "sasl_ssl_port": sasl.port if sasl else None, "started": time.time()}
    write_json_atomic(state / "broker.json", info)
    _wait_ready(proc, state, BusSettings(info["bootstrap"]), timeout)
    ensure_topics(BusSettings(info["bootstrap"]), topics)
    return info | {"running": True, "state": str(state)}


def _check_port_free(port: int) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            raise BusError(f"port {port} on 127.0.0.1 is in use: another broker or program holds it (bus.port)") from None


def _wait_ready(proc: subprocess.Popen, state: Path, settings: BusSettings, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise BusError(f"the broker exited with code {proc.returncode}; its log:\n{_tail(state)}")
        try:
            check_bus(settings, timeout=2.0)
            return
        except BusError:
            time.sleep(0.5)
    stop(state)
    raise BusError(f"the broker did not answer on {settings.bootstrap} within {timeout:.0f} s; its log:\n{_tail(state)}")


def _tail(state: Path, lines: int = 30) -> str:
    text = ""
    for name in ("broker.out", "broker.log"):
        if (state / name).exists():
            text += "\n".join((state / name).read_text(errors="replace").splitlines()[-lines:]) + "\n"
    return text


def stop(state: str | Path, timeout: float = 30.0) -> bool:
    """Stop the broker of ``state`` (SIGTERM, then SIGKILL after ``timeout``); False if none ran."""
    info = status(state)
    if not info["running"]:
        return False
    stop_process(info["pid"], timeout)
    return True
