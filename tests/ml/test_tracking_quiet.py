"""setup_mlflow keeps MLflow's INFO chatter (store creation) out of notebooks; warnings still show."""
from __future__ import annotations

import logging

from mbolake.ml.tracking import setup_mlflow


def test_a_new_store_is_created_without_info_lines(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    logging.getLogger("mlflow").setLevel(logging.NOTSET)
    setup_mlflow(tracking_uri=f"sqlite:///{tmp_path / 'mlruns.db'}", artifact_root=str(tmp_path / "artifacts"))
    assert (tmp_path / "mlruns.db").exists()
    assert logging.getLogger("mlflow").getEffectiveLevel() == logging.WARNING
    assert not [r for r in caplog.records if r.name.startswith("mlflow") and r.levelno < logging.WARNING]
