"""The logged model's predict carries a pandas type hint: MLflow loads it without its
"Add type hints to the `predict` method" warning, and validates input by the logged signature only."""
from __future__ import annotations

import inspect
import warnings

import pandas as pd


def test_predict_has_a_frame_type_hint_and_mlflow_does_not_warn():
    from mlflow.pyfunc.utils.data_validation import _get_func_info_if_type_hint_supported

    from mbolake.ml.setup_model import SetupOutcomeModel

    hints = inspect.get_annotations(SetupOutcomeModel.predict, eval_str=True)
    assert hints["model_input"] is pd.DataFrame and hints["return"] is pd.DataFrame
    _get_func_info_if_type_hint_supported.cache_clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        info = _get_func_info_if_type_hint_supported(SetupOutcomeModel.predict)
    assert info is None  # a frame hint gives no schema: the signature logged with the model validates
    assert not [w for w in caught if "type hint" in str(w.message).lower()]
