"""The Spark session: local mode with Delta Lake, or the existing one on Databricks."""
from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from pathlib import Path

from .atomic_files import write_text_atomic
from .config import Profile, load_profile

LAYERS = ("bronze", "silver", "gold")
DELTA_PACKAGE = "io.delta:delta-spark_2.13:4.0.1"  # matches the pinned delta-spark wheel
# Spark's Kafka source for the streaming jobs. The 4.0.1 artifact does not resolve from Maven Central
# (its spark-token-provider-kafka-0-10 4.0.1 is not served); 4.0.0 does and runs on PySpark 4.0.1.
KAFKA_PACKAGE = "org.apache.spark:spark-sql-kafka-0-10_2.13:4.0.0"
PACKAGES = (DELTA_PACKAGE, KAFKA_PACKAGE)


def on_databricks() -> bool:
    return "DATABRICKS_RUNTIME_VERSION" in os.environ


def get_spark(profile: Profile | None = None, app_name: str = "mbolake", driver_memory: str | None = None):
    """Return a SparkSession with Delta Lake and the ``bronze``/``silver``/``gold`` databases
    (``driver_memory`` overrides the profile's, e.g. for a background stream job)."""
    from pyspark.sql import SparkSession

    profile = profile or load_profile()
    if on_databricks():
        spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
    else:
        spark = _local_session(profile, app_name, driver_memory)
    ensure_databases(spark, profile)
    return spark


def _local_session(profile: Profile, app_name: str, driver_memory: str | None = None):
    from pyspark.sql import SparkSession

    conf = profile.spark
    lake = profile.lake_root
    # Python workers must run this interpreter (the venv with mbolake), not python3 on PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    ivy = str(Path(conf.get("ivy_cache", "~/.cache/mbolake/ivy")).expanduser())
    builder = (
        SparkSession.builder.appName(app_name)
        .master(conf.get("master", "local[*]"))
        .config("spark.driver.memory", driver_memory or conf.get("driver_memory", "8g"))
        .config("spark.sql.shuffle.partitions", str(conf.get("shuffle_partitions", 4)))
        .config("spark.default.parallelism", str(conf.get("shuffle_partitions", 4)))
        .config("spark.ui.enabled", str(conf.get("ui_enabled", False)).lower())
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
        .config("spark.sql.warehouse.dir", f"{lake}/_warehouse")
        .config("spark.jars.ivy", ivy)
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.parquet.compression.codec", "zstd")
        .config("spark.databricks.delta.schema.autoMerge.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        # Small Delta logs on a 2-core machine: a few partitions rebuild a snapshot fastest.
        .config("spark.databricks.delta.snapshotPartitions", "2")
    )
    builder = builder.config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={log4j2_properties()}")
    # The JVM inherits this process's stdout/stderr: Ivy's resolution report, log4j's console and the
    # shutdown hook's traces would land in the console and in notebook cells. They go to a log file.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    jars = resolved_jars(ivy)
    if jars:
        builder = builder.config("spark.jars", ",".join(jars))
    else:
        builder = builder.config("spark.jars.packages", ",".join(PACKAGES))
    with jvm_output_to(spark_log_path()):
        spark = builder.getOrCreate()
    if not jars:
        remember_resolved_jars(ivy, spark.sparkContext.getConf().get("spark.jars", ""))
    spark.sparkContext.setLogLevel("WARN")
    return spark


def resolved_jars_file(ivy: str) -> Path:
    """Where the jar files Ivy resolved for ``PACKAGES`` are listed (named for the packages)."""
    digest = hashlib.sha256(",".join(PACKAGES).encode()).hexdigest()[:12]
    return Path(ivy) / f"mbolake-resolved-jars-{digest}.txt"


def resolved_jars(ivy: str) -> list[str]:
    """The local jar files of ``PACKAGES`` when an earlier start resolved them and every one is
    still there, else ``[]``. A JVM given the files starts without Ivy's resolution (0.4-0.6 s of
    a 6 s start on an idle 2-core machine, 4-5 s on a busy one; every notebook kernel, stream job
    and test session starts one)."""
    listing = resolved_jars_file(ivy)
    if not listing.is_file():
        return []
    jars = listing.read_text().split()
    return jars if jars and all(Path(jar).is_file() for jar in jars) else []


def remember_resolved_jars(ivy: str, spark_jars: str) -> None:
    """Keep the jar files a start resolved (``spark.jars``: ``file:`` URIs) for the next start."""
    jars = [uri.removeprefix("file://") for uri in spark_jars.split(",") if uri.startswith("file:")]
    if len(jars) >= len(PACKAGES) and all(Path(jar).is_file() for jar in jars):
        write_text_atomic(resolved_jars_file(ivy), "\n".join(jars) + "\n")


LOG4J2 = """\
# Written by mbolake.runtime.spark: Spark's own warnings only, third-party chatter off.
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n%ex
logger.hadoop.name = org.apache.hadoop
logger.hadoop.level = error
logger.utils.name = org.apache.spark.util.Utils
logger.utils.level = error
logger.shutdown.name = org.apache.spark.util.ShutdownHookManager
logger.shutdown.level = off
logger.parquet.name = org.apache.parquet
logger.parquet.level = error
"""


def log4j2_properties() -> Path:
    """The driver's log4j2 configuration, written once under ~/.cache/mbolake/."""
    path = Path("~/.cache/mbolake/log4j2-mbolake.properties").expanduser()
    if not path.exists() or path.read_text() != LOG4J2:
        write_text_atomic(path, LOG4J2)
    return path


def spark_log_path() -> Path:
    """Where the driver JVM writes: ``MBOLAKE_SPARK_LOG`` (``mbolake run`` points it into the run's
    logs/ folder), else ~/.cache/mbolake/spark-driver.log."""
    return Path(os.environ.get("MBOLAKE_SPARK_LOG") or "~/.cache/mbolake/spark-driver.log").expanduser()


@contextlib.contextmanager
def jvm_output_to(path: Path):
    """File descriptors 1 and 2 point at ``path`` while the JVM starts, so it inherits them;
    this process gets its own back afterwards (also under ipykernel, which watches them)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    try:
        yield path
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


def ensure_databases(spark, profile: Profile) -> None:
    for layer in LAYERS:
        if on_databricks() and profile.settings.get("catalog"):
            spark.sql(f"CREATE SCHEMA IF NOT EXISTS {profile.settings['catalog']}.{layer}")
        else:
            spark.sql(f"CREATE DATABASE IF NOT EXISTS {layer} LOCATION '{profile.layer_path(layer)}'")
