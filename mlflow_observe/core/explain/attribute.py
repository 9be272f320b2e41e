"""Attributions of a model's score, by the cheapest exact method that applies.

A scikit-learn tree model (a forest, boosted trees, one tree) is explained by
SHAP's TreeExplainer when the optional ``shap`` package is installed: exact
Shapley values, in about the time of a few predictions. Any other model (or a
tree model without SHAP) goes to :func:`~.shapley.sampled_shapley`, whose cost
is ``rows x orderings x background rows x (features + 1)`` predictions.

The score explained is a classifier's probability of its last class (when it
has ``predict_proba``), else the model's numeric prediction. The baseline's
global importance and a window's are computed by :func:`attribute` with the
same model, so they explain the same score the same way.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd

from mlflow_observe.core.explain.shapley import Attributions, sampled_shapley

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
# Rows attributed for a global importance (the baseline's, a window's): the tree explainer
# is cheap; the sampled method costs rows x 8 orderings x 50 background rows x (features + 1)
# predictions: 8,400 a row for 20 features.
TREE_ROWS = 1000
SAMPLED_ROWS = 200
# Predictions the sampled method may make for one global importance: 200 rows up to 48
# features, fewer rows beyond (never fewer than 50).
SAMPLED_BUDGET = 4_000_000
MIN_SAMPLED_ROWS = 50
# Classifiers whose trees hold class shares, so that the trees' own output is the probability.
PROBABILITY_TREES = TREE_TYPES[:6:2]


def is_tree_model(model) -> bool:
    """Whether SHAP's TreeExplainer applies: ``shap`` installed and a scikit-learn tree model."""
    return type(model).__name__ in TREE_TYPES and importlib.util.find_spec("shap") is not None


def importance_rows(model, n_features: int = 20) -> int:
    """The rows a global importance of ``model`` is measured on.

    1,000 with the tree explainer; with the sampled method 200, fewer for wide
    tables so that the predictions stay within ``SAMPLED_BUDGET`` (at least
    ``MIN_SAMPLED_ROWS``).

    Examples
    --------
    >>> importance_rows(lambda frame: frame.sum(axis=1)), importance_rows(print, n_features=200)
    (200, 50)
    """
    if is_tree_model(model):
        return TREE_ROWS
    per_row = 8 * 50 * (max(int(n_features), 1) + 1)  # orderings x background x (features + 1)
    return int(min(SAMPLED_ROWS, max(MIN_SAMPLED_ROWS, SAMPLED_BUDGET // per_row)))


def tree_attributions(model, rows, background, *, output: str, max_background: int = 100):
    """SHAP's TreeExplainer on a scikit-learn tree model: exact Shapley values.

    Forests' own outputs (a regressor's prediction, a classifier's class shares)
    are explained from the trees' recorded paths, with no background (fast);
    a boosted classifier's probability needs the background rows (SHAP's
    interventional mode, slower). Returns the attributions and what they explain.
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


def score_function(model):
    """``frame -> numbers``: a classifier's probability of its last class, else ``predict``.

    Examples
    --------
    >>> import pandas as pd
    >>> score_function(lambda frame: frame["x"] * 2)(pd.DataFrame({"x": [1, 2]})).tolist()
    [2.0, 4.0]
    """
    predict = model.predict if hasattr(model, "predict") else model
    if hasattr(model, "predict_proba"):

        def probability(frame):
            try:
                return np.asarray(model.predict_proba(frame), dtype=float)[:, -1]
            except AttributeError:  # a wrapper that offers it when its model does not
                return numeric(frame)

        return probability
    if not callable(predict):
        raise TypeError(
            f"Cannot attribute a {type(model).__name__}: give a model with predict "
            "(or predict_proba), or a callable."
        )

    def numeric(frame):
        output = predict(frame)
        if isinstance(output, pd.DataFrame):
            output = output.iloc[:, 0]
        array = np.asarray(output)
        if array.ndim > 1:
            array = array.reshape(len(frame), -1)[:, 0]
        if array.dtype.kind not in "fiub":
            raise TypeError(
                "The model predicts labels, not numbers, so its prediction cannot be split "
                "among features: give a model with predict_proba or one returning a score."
            )
        return array.astype(float)

    return numeric


def attribute(
    model,
    rows: pd.DataFrame,
    background: pd.DataFrame,
    *,
    max_rows: int | None = None,
    n_permutations: int = 8,
    max_background: int = 50,
    random_state: int = 0,
) -> Attributions:
    """Attribute ``model``'s score on ``rows``: the tree explainer when it applies, else sampled.

    Parameters
    ----------
    model : estimator or callable
        A model with ``predict_proba`` or ``predict``, or a callable ``frame -> numbers``.
    rows, background : pandas.DataFrame
        The rows to explain and the rows standing for "no information" (same columns).
    max_rows : int, optional
        Explain at most this many rows (a seeded uniform choice): bounds the cost.
    n_permutations, max_background, random_state
        The sampled method's orderings and background rows (see
        :func:`~.shapley.sampled_shapley`); the tree explainer needs neither.

    Returns
    -------
    Attributions

    Examples
    --------
    >>> import pandas as pd
    >>> rows = pd.DataFrame({"a": [1.0, 3.0], "b": [0.0, 1.0]})
    >>> result = attribute(lambda f: 2 * f["a"] + f["b"], rows, rows)
    >>> result.values.round(6).to_dict("list"), result.method
    ({'a': [-2.0, 2.0], 'b': [-0.5, 0.5]}, 'sampled_shapley')
    """
    if max_rows is not None and len(rows) > max_rows:
        chosen = np.random.default_rng(random_state).choice(len(rows), max_rows, replace=False)
        rows = rows.iloc[np.sort(chosen)]
    if is_tree_model(model):
        output = "probability" if hasattr(model, "predict_proba") else "prediction"
        attributions, _ = tree_attributions(
            model, rows, background, output=output, max_background=max_background
        )
        return attributions
    return sampled_shapley(
        score_function(model),
        rows,
        background,
        n_permutations=n_permutations,
        max_background=max_background,
        random_state=random_state,
    )
