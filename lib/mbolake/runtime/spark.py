"""The Spark session: local mode with Delta Lake, or the existing one on Databricks."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from .config import Profile, load_profile

LAYERS = ("bronze", "silver", "gold")
DELTA_PACKAGE = "io.delta:delta-spark_2.13:4.0.1"  # matches the pinned delta-spark wheel


def on_databricks() -> bool:
    return "DATABRICKS_RUNTIME_VERSION" in os.environ


def get_spark(profile: Profile | None = None, app_name: str = "mbolake"):
    """Return a SparkSession with Delta Lake and the ``bronze``/``silver``/``gold`` databases."""
    from pyspark.sql import SparkSession

    profile = profile or load_profile()
    if on_databricks():
        spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
    else:
        spark = _local_session(profile, app_name)
    ensure_databases(spark, profile)
    return spark


def _local_session(profile: Profile, app_name: str):
    from delta import configure_spark_with_delta_pip
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
        .config("spark.driver.memory", conf.get("driver_memory", "8g"))
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
    spark = configure_spark_with_delta_pip(builder).getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def ensure_databases(spark, profile: Profile) -> None:
    for layer in LAYERS:
        if on_databricks() and profile.settings.get("catalog"):
            spark.sql(f"CREATE SCHEMA IF NOT EXISTS {profile.settings['catalog']}.{layer}")
        else:
            spark.sql(f"CREATE DATABASE IF NOT EXISTS {layer} LOCATION '{profile.layer_path(layer)}'")
