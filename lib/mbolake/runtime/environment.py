"""The environment check behind notebooks/00_setup/00_environment_check."""
from __future__ import annotations

import importlib.metadata
import platform
import shutil
import subprocess
import sys
import time
import uuid

import pandas as pd

PACKAGES = (
    "pyspark", "delta-spark", "deltalake", "pandas", "numpy", "numba", "pyarrow", "databento",
    "databento-dbn", "papermill", "jupyterlab", "plotly", "mlflow", "hyperopt", "scikit-learn",
    "azure-ai-ml", "azure-eventhub",
)


def versions() -> pd.DataFrame:
    rows = [("python", sys.version.split()[0]), ("platform", platform.platform())]
    for name in PACKAGES:
        try:
            rows.append((name, importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            rows.append((name, "MISSING"))
    return pd.DataFrame(rows, columns=["component", "version"])


def java_version() -> str:
    java = shutil.which("java")
    if java is None:
        return "MISSING: no java on PATH (Spark needs Java 17)"
    out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    return (out.stderr or out.stdout).splitlines()[0]


def spark_delta_round_trip(ctx) -> dict:
    """Write a small Delta table under the lake, read it back, drop it."""
    spark = ctx.spark
    path = f"{ctx.profile.lake_root}/_checks/roundtrip_{uuid.uuid4().hex[:8]}"
    t0 = time.perf_counter()
    spark.range(1000).selectExpr("id", "id * 2 AS twice").write.format("delta").save(path)
    back = spark.read.format("delta").load(path)
    total, rows = back.selectExpr("sum(twice)", "count(*)").first()
    version = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").first()["version"]
    if "://" not in path:
        shutil.rmtree(path, ignore_errors=True)
    if total != 999_000 or rows != 1000:
        raise RuntimeError(f"Delta round trip read back {rows} rows summing to {total}, expected 1000 and 999000")
    return {"spark": spark.version, "delta_version_written": version, "rows": rows,
            "seconds": round(time.perf_counter() - t0, 2)}


def lake_paths(profile) -> pd.DataFrame:
    rows = [("profile", profile.name), ("project root", str(profile.root)), ("raw DBN landing", profile.raw_dbn_root),
            ("lake root", profile.lake_root), ("ML artifacts", profile.ml_artifacts_root), ("runs", profile.runs_root)]
    rows += [(f"{layer} database", profile.layer_path(layer)) for layer in ("bronze", "silver", "gold")]
    return pd.DataFrame(rows, columns=["what", "where"])
