"""Explainers a served model and ``mo.explain`` share: background rows and SHAP's tree explainer.

The model-agnostic method is :func:`mlflow_observe.core.explain.sampled_shapley`;
this module adds what needs the baseline profile or an optional dependency
(SHAP, the ``explain`` extra), so that the flavor (which attributes sampled
served predictions) and :func:`mlflow_observe.explain` use the same code.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlflow_observe.core.explain import Attributions
from mlflow_observe.core.profile.data_profile import DataProfile


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


TREE_TYPES = (
    "RandomForestClassifier",
    "RandomForestRegressor",
    "ExtraTreesClassifier",
    "ExtraTreesRegressor",
    "DecisionTreeClassifier",
    "DecisionTreeRegressor",
    "GradientBoostingClassifier",
    "GradientBoostingRegressor",
)
# Classifiers whose trees hold class shares, so that the trees' own output is the probability.
PROBABILITY_TREES = TREE_TYPES[:6:2]


def tree_model(model):
    """The scikit-learn tree model behind ``model`` when SHAP can explain it, else None."""
    import importlib.util

    if importlib.util.find_spec("shap") is None:
        return None
    if isinstance(model, str):
        try:
            import mlflow.sklearn

            model = mlflow.sklearn.load_model(model)
        except Exception:  # not a scikit-learn model: the sampled method applies
            return None
    return model if type(model).__name__ in TREE_TYPES else None


def tree_attributions(model, rows, background, *, output: str, max_background: int = 100):
    """SHAP's TreeExplainer on a scikit-learn tree model: exact Shapley values.

    Forests' own outputs (a regressor's prediction, a classifier's class shares)
    are explained from the trees' recorded paths, with no background (fast);
    a boosted classifier's probability needs the background rows (SHAP's
    interventional mode, slower).
    """
    import shap

    name = type(model).__name__
    classifier = hasattr(model, "predict_proba")
    if classifier and output != "probability":
        raise TypeError(
            "The model predicts labels, not numbers, so its prediction cannot be split "
            "among features: explain output='probability'."
        )
    if output == "probability" and not classifier:
        raise TypeError(f"A {name} has no predict_proba: explain output='prediction'.")
    if not classifier or name in PROBABILITY_TREES:
        explainer = shap.TreeExplainer(model)
    else:
        data = background.sample(min(len(background), max_background), random_state=0)
        explainer = shap.TreeExplainer(
            model, data=data, feature_perturbation="interventional", model_output="probability"
        )
    values = np.asarray(explainer.shap_values(rows, check_additivity=False))
    expected = np.atleast_1d(explainer.expected_value)
    if values.ndim == 3:  # rows x features x classes: the last class
        values, expected = values[:, :, -1], expected[-1:]
    if classifier:
        predictions = model.predict_proba(rows)[:, -1]
        description = f"probability of {model.classes_[-1]}"
    else:
        predictions = model.predict(rows)
        description = "prediction"
    attributions = Attributions(
        values=pd.DataFrame(values, columns=list(rows.columns), index=rows.index),
        base_value=float(expected[-1]),
        predictions=np.asarray(predictions, dtype=float),
        method="tree_shap",
    )
    return attributions, description
