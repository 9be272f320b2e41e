"""Explainers a served model and ``mo.explain`` share: background rows and tree models.

The model-agnostic method is :func:`mlflow_observe.core.explain.sampled_shapley`;
this module adds what needs the baseline profile or an optional dependency
(SHAP, the ``explain`` extra), so that the flavor (which attributes sampled
served predictions) and :func:`mlflow_observe.explain` use the same code.
"""

from __future__ import annotations

import importlib.util

import pandas as pd

from mlflow_observe.core.explain.attribute import is_tree_model, tree_attributions
from mlflow_observe.core.profile.data_profile import DataProfile

__all__ = ["baseline_background", "tree_attributions", "tree_model"]


def baseline_background(profile: DataProfile, columns) -> pd.DataFrame:
    """The baseline's row sample, as background rows with ``columns``."""
    missing = [c for c in columns if c not in profile.sample.columns]
    if missing:
        raise ValueError(
            f"The baseline's row sample lacks the columns {missing}; pass background= rows "
            "with the model's input columns."
        )
    frame = pd.DataFrame({c: profile.sample.values(c) for c in columns}).infer_objects()
    if frame.empty:
        raise ValueError("The baseline's row sample is empty; pass background= rows.")
    return frame


def tree_model(model):
    """The scikit-learn tree model behind ``model`` when SHAP can explain it, else None.

    ``model`` may be a model URI: a scikit-learn model is loaded from it.
    """
    if isinstance(model, str):
        if importlib.util.find_spec("shap") is None:
            return None
        try:
            import mlflow.sklearn

            model = mlflow.sklearn.load_model(model)
        except Exception:  # not a scikit-learn model: the sampled method applies
            return None
    return model if is_tree_model(model) else None
